"""One solo-pool Celery worker on the portal's queues, for the benches that time a real one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def solo_worker(
    log: Path, *, ready_within: float, env: dict[str, str] | None = None, name: str = "worker"
) -> Iterator[subprocess.Popen]:
    """Start the worker, logging to `log`; yield it once it says ready; stop it when done.

    Call after django.setup(): the queues come from the settings.
    """
    from django.conf import settings

    worker = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-m", "celery", "-A", "melanoma_portal", "worker", "--pool=solo",
         "--concurrency=1", "--loglevel=INFO", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "--purge", "--queues=" + ",".join(settings.PORTAL_QUEUES)],
        cwd=ROOT, env=dict(os.environ) if env is None else env,
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + ready_within
        while " ready." not in log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{name} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield worker
    finally:
        worker.terminate()
        worker.wait(timeout=30)
