"""The web tier as production runs it, started by a test: gunicorn with deploy/gunicorn.conf.py
on the test's database (and, with tests/nginx.py, nginx in front of it).

    with gunicorn_server(env=bucket.env) as base_url:      # "http://127.0.0.1:<port>"
        requests.get(f"{base_url}/healthz")
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from tests.s3 import free_port
from tests.worker import REPO_ROOT, test_database_url


@contextmanager
def gunicorn_server(
    *, env: dict[str, str] | None = None, workers: int = 2, ready_timeout: float = 60
) -> Iterator[str]:
    port = free_port()
    run_dir = Path(tempfile.mkdtemp(prefix="gunicorn-"))
    log = (run_dir / "gunicorn.log").open("w")
    server_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ.get(
            "DJANGO_SETTINGS_MODULE", "melanoma_portal.settings.test"
        ),
        "DATABASE_URL": test_database_url(),
        "DATABASE_CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": str(settings.CELERY_RESULT_BACKEND),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "ML_MODELS_ROOT": str(settings.ML_MODELS_ROOT),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        "PROMETHEUS_MULTIPROC_DIR": str(run_dir / "prometheus"),
        **(env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(REPO_ROOT / "deploy" / "gunicorn.conf.py")],
        cwd=REPO_ROOT,
        env=server_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base_url, process, Path(log.name), ready_timeout)
        yield base_url
    finally:
        stop_process_group(process)
        log.close()
        shutil.rmtree(run_dir, ignore_errors=True)


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM a server started in its own process group, then SIGKILL after 30 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _wait_healthy(base_url: str, process, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"gunicorn not healthy after {timeout}s:\n{log.read_text()[-3000:]}")
