"""Start a real Celery worker process from a test, pointed at the test's database and media.

    with celery_worker(media_root=settings.MEDIA_ROOT) as worker:
        ...                        # enqueue; the worker consumes from the same broker
        worker.kill()              # SIGKILL mid-task (fault tests), then start another

    with celery_beat(schedule=tmp_path / "schedule", env=env):
        ...                        # beat in its own process, as bin/beat runs it

The worker is `celery -A melanoma_portal worker` in a subprocess, so it is the same code path as
production: its own process, its own database connection, the classifier loaded once. It sees
the test database only if that database is a server (PostgreSQL) and the test commits its rows
(`transactional_db`); `require_shared_services()` skips with the reason otherwise.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

REPO_ROOT = Path(__file__).resolve().parent.parent


def require_shared_services() -> None:
    """Skip unless a worker process can share this test's database and broker."""
    if connection.vendor != "postgresql":
        pytest.skip(
            "needs PostgreSQL: a worker process cannot see an in-memory SQLite test database "
            "(set DATABASE_URL, as bin/test does)"
        )
    if not settings.CELERY_BROKER_URL.startswith(("redis", "amqp", "pyamqp")):
        pytest.skip(
            "needs a broker server: set CELERY_BROKER_URL=redis://... (bin/test does) or "
            "amqp://... (RabbitMQ)"
        )


def test_database_url() -> str:
    """A DATABASE_URL naming the test database this process is using right now."""
    db = connection.settings_dict
    user = quote(db.get("USER") or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


class WorkerProcess:
    def __init__(self, process: subprocess.Popen, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log():
                return
            if not self.is_alive():
                raise RuntimeError(f"worker exited before it was ready:\n{self.log()[-3000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready after {timeout}s:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the worker (and a prefork pool's children): a crash, not a shutdown."""
        if self.is_alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 20) -> None:
        """Warm shutdown (SIGTERM); SIGKILL if it does not finish in `timeout` seconds."""
        if not self.is_alive():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def _environment(overrides: dict[str, str] | None) -> dict[str, str]:
    """This process's environment, pointed at the current test database, broker and media;
    `overrides` win."""
    environment = dict(os.environ)
    environment.update(
        DJANGO_SETTINGS_MODULE=os.environ.get(
            "DJANGO_SETTINGS_MODULE", "melanoma_portal.settings.test"
        ),
        DATABASE_URL=test_database_url(),
        DATABASE_CONN_MAX_AGE="0",
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        CELERY_RESULT_BACKEND=str(settings.CELERY_RESULT_BACKEND),
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        ML_MODELS_ROOT=str(settings.ML_MODELS_ROOT),
        PYTHONUNBUFFERED="1",
    )
    environment.update(overrides or {})
    return environment


@contextmanager
def celery_worker(
    *,
    media_root: Path | str | None = None,
    env: dict[str, str] | None = None,
    pool: str = "solo",
    concurrency: int = 1,
    purge: bool = False,
    ready_timeout: float = 90,
    queues: list[str] | None = None,
    hostname: str | None = None,
) -> Iterator[WorkerProcess]:
    """Run one worker for the duration of the block; always stopped on the way out.

    The worker inherits this process's environment (so the same broker, settings module and
    encryption key), with DATABASE_URL naming the current test database and MEDIA_ROOT the
    test's media folder. `env` overrides anything (ML_MODELS_ROOT, say). `purge=True` drops
    messages left in the queue by earlier runs; leave it off when a test relies on a message
    surviving a worker's death. `queues` defaults to all of settings.PORTAL_QUEUES (as
    bin/worker does); `hostname` names the worker (a "host" of the multi-host test).
    """
    worker_env = _environment({"MEDIA_ROOT": str(media_root or settings.MEDIA_ROOT), **(env or {})})
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept for the worker's lifetime
        prefix="celery-worker-", suffix=".log", delete=False
    )
    command = [
        sys.executable, "-m", "celery", "-A", "melanoma_portal", "worker",
        f"--pool={pool}", f"--concurrency={concurrency}", "--loglevel=INFO",
        f"--hostname={hostname or f'test-{uuid.uuid4().hex[:8]}'}@%h",
        f"--queues={','.join(queues or settings.PORTAL_QUEUES)}",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    if purge:
        command.append("--purge")
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=worker_env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: kill() reaches a pool's children
    )
    worker = WorkerProcess(process, Path(log_file.name))
    try:
        worker.wait_ready(ready_timeout)
        yield worker
    finally:
        worker.stop()
        log_file.close()


class BeatProcess(WorkerProcess):
    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "beat: Starting..." in self.log():
                return
            if not self.is_alive():
                raise RuntimeError(f"beat exited before it started:\n{self.log()[-3000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"beat not started after {timeout}s:\n{self.log()[-3000:]}")


@contextmanager
def celery_beat(*, schedule: Path, env: dict[str, str] | None = None) -> Iterator[BeatProcess]:
    """Run `celery beat` (its own process, as bin/beat does) for the duration of the block,
    with the same environment rules as celery_worker; its schedule file is `schedule`."""
    beat_env = _environment(env)
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept for the process's lifetime
        prefix="celery-beat-", suffix=".log", delete=False
    )
    command = [
        sys.executable, "-m", "celery", "-A", "melanoma_portal", "beat",
        f"--schedule={schedule}", "--loglevel=INFO",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=beat_env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    beat = BeatProcess(process, Path(log_file.name))
    try:
        beat.wait_ready()
        yield beat
    finally:
        beat.stop()
        log_file.close()


def wait_for(predicate, *, timeout: float, interval: float = 0.25, message: str = "") -> None:
    """Poll `predicate` until it is true; fail the test with `message` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    pytest.fail(message or f"condition not met within {timeout}s")


def purge_queues() -> None:
    """Empty the portal's queues on the test's broker (leftovers of an earlier run)."""
    from melanoma_portal.celery import app

    with app.connection_for_write() as connection:
        for queue in settings.PORTAL_QUEUES:
            channel = connection.channel()
            # Declared as Celery declares them (durable), so the purge finds them on RabbitMQ.
            channel.queue_declare(queue=queue, durable=True, auto_delete=False)
            channel.queue_purge(queue)
            channel.close()
