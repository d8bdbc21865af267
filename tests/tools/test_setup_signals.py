"""`bin/setup` stops cleanly on SIGINT and SIGTERM, also when started in the background
(issue 13, item 9): a background job is born with SIGINT ignored, and bin/setup then ignored
Ctrl-C from `kill -INT`; SIGTERM waited for the web server, which never stopped.

bin/setup runs for real on a temporary folder (SQLite, the filesystem broker, the demo clinic),
with its web server and worker; the test waits until both are up, sends the signal, and checks
that bin/setup and every process it started are gone.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.worker import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(entry.name))
    return members


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory):
    """One folder for both runs: the second finds the database migrated and the demo loaded."""
    return tmp_path_factory.mktemp("setup-var")


def _as_a_background_job() -> None:
    # What a shell without job control does to `command &`: SIGINT and SIGQUIT ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("sent", "exit_status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"]
)
def test_setup_in_the_background_stops_cleanly(var_dir, sent, exit_status):
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "melanoma_portal.settings.dev",
        "PORTAL_VAR_DIR": str(var_dir),
        "DATABASE_URL": f"sqlite:///{var_dir / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_RESULT_BACKEND": f"file://{var_dir / 'celery-results'}",
        "MEDIA_ROOT": str(var_dir / "media"),
        "CACHE_URL": "",
        "PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PORTAL_SETUP_SIGNALS_RESET", None)
    log_path = var_dir / f"setup-{sent.name}.log"
    with log_path.open("w") as log:
        setup = subprocess.Popen(
            ["bin/setup"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_as_a_background_job,  # noqa: PLW1509 - the point of the test
            start_new_session=True,  # its own process group, to find (and clean up) its children
        )
    group = setup.pid
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            log_text = log_path.read_text(errors="replace")
            up = " ready." in log_text
            try:
                up = up and requests.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=2).ok
            except requests.ConnectionError:
                up = False
            if up:
                break
            assert setup.poll() is None, f"bin/setup exited early:\n{log_text[-3000:]}"
            time.sleep(1)
        else:
            pytest.fail(f"web server and worker not up:\n{log_path.read_text()[-3000:]}")
        assert len(_group_members(group)) >= 3  # bin/setup, the worker, the web server

        os.kill(setup.pid, sent)

        try:
            status = setup.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"bin/setup ignored {sent.name}:\n{log_path.read_text()[-2000:]}")
        assert status == exit_status
        deadline = time.monotonic() + 10
        while _group_members(group) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _group_members(group), "processes bin/setup started are still running"
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=2)
    finally:
        if _group_members(group):
            os.killpg(group, signal.SIGKILL)
