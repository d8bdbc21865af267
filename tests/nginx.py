"""nginx in front of gunicorn, as deploy/ configures them, started by a test through
bin/serve-nginx (the script an administrator runs locally): TLS at nginx with a self-signed
certificate, static files from nginx, production settings in gunicorn, on the test's database.

    with nginx_in_front(env={...}) as site:
        site.https   # "https://127.0.0.1:<port>"
        site.http    # "http://127.0.0.1:<port>" (redirects, except /healthz)
"""

from __future__ import annotations

import os
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from tests.s3 import free_port
from tests.web import stop_process_group
from tests.worker import REPO_ROOT, test_database_url

UNVERIFIED = ssl._create_unverified_context()  # noqa: S323 - our own self-signed certificate


@dataclass(frozen=True)
class Site:
    https: str
    http: str
    run_dir: Path

    def access_log(self) -> str:
        path = self.run_dir / "logs" / "melanoma-portal.access.log"
        return path.read_text() if path.exists() else ""


def require_nginx() -> None:
    if not shutil.which("nginx") and not Path("/usr/sbin/nginx").exists():
        pytest.skip("needs Debian's nginx (apt-get install -y nginx; .ci/run installs it)")


@contextmanager
def nginx_in_front(*, env: dict[str, str] | None = None, timeout: float = 90) -> Iterator[Site]:
    require_nginx()
    https_port, http_port, web_port = free_port(), free_port(), free_port()
    run_dir = Path(tempfile.mkdtemp(prefix="serve-nginx-"))
    log = run_dir / "serve.log"
    server_env = {
        **os.environ,
        "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin",
        "DJANGO_SETTINGS_MODULE": "melanoma_portal.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Production refuses to start without a shared cache (lock-out and throttle counters).
        "CACHE_URL": "redis://127.0.0.1:6379/1",
        "DATABASE_URL": test_database_url(),
        "DATABASE_CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": str(settings.CELERY_RESULT_BACKEND),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "ML_MODELS_ROOT": str(settings.ML_MODELS_ROOT),
        "STATIC_ROOT": str(run_dir / "static"),
        "NGINX_RUN_DIR": str(run_dir),
        "HTTPS_PORT": str(https_port),
        "HTTP_PORT": str(http_port),
        "GUNICORN_BIND": f"127.0.0.1:{web_port}",
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(run_dir / "prometheus"),
        "PORTAL_PYTHON": sys.executable,
        **(env or {}),
    }
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(REPO_ROOT / "bin" / "serve-nginx")],
            cwd=REPO_ROOT,
            env=server_env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    site = Site(f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}", run_dir)
    try:
        _wait_healthy(site, process, log, timeout)
        yield site
    finally:
        stop_process_group(process)
        shutil.rmtree(run_dir, ignore_errors=True)


def _wait_healthy(site: Site, process, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bin/serve-nginx exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(  # noqa: S310
                f"{site.https}/healthz", timeout=2, context=UNVERIFIED
            ) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"nginx + gunicorn not healthy after {timeout}s:\n{log.read_text()[-3000:]}")
