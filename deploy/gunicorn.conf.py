"""gunicorn's settings for a web host: `gunicorn -c deploy/gunicorn.conf.py` (the systemd unit
deploy/systemd/portal-web.service, and bin/serve-nginx for a local run).

Threaded workers behind nginx: nginx buffers each upload (up to UPLOAD_MAX_BYTES) and each
response, so a slow phone on a ward's Wi-Fi holds an nginx connection, never a Python worker.
Threads (gthread) because a result page waiting for its analysis holds its status request for
up to STATUS_WAIT_MAX_S (diagnosis.selectors.analysis_wait): with sync workers 20 waiting
browsers would hold every process; with threads they hold at most GUNICORN_THREADS - 2 threads
of each process, and the rest serve everyone else. Every value can be set from the environment.
"""

import os
import tempfile

wsgi_app = "melanoma_portal.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8001")
# Two processes a core, plus one (gunicorn's advice); WEB_CONCURRENCY overrides.
workers = int(os.environ.get("WEB_CONCURRENCY", str(2 * (os.cpu_count() or 1) + 1)))
worker_class = "gthread"
# Each thread keeps its own database connection: WEB_CONCURRENCY x GUNICORN_THREADS per web
# host count against PostgreSQL's max_connections.
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# Read by the settings of every worker process (forked from this one): how many status
# requests may wait at once (STATUS_WAIT_SLOTS).
os.environ["GUNICORN_THREADS"] = str(threads)
# Longest request: a PDF report of full-size heatmaps takes a few seconds; nginx waits 65 s.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# A worker is replaced now and then, so a slow leak never grows for weeks.
max_requests = 2000
max_requests_jitter = 200
# nginx on this host sets X-Forwarded-Proto; Django trusts it through SECURE_PROXY_SSL_HEADER.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = None  # nginx logs every request, with its $request_id
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "melanoma-portal-web"
# systemd starts, reloads (HUP) and stops gunicorn; no runtime control socket in $HOME.
control_socket_disable = True

# prometheus-client's multiprocess mode: each worker writes its samples into this folder and
# /metrics adds them up. Emptied at start: samples of a previous run's processes are stale.
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="melanoma-portal-prometheus-")
)


def on_starting(server) -> None:
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".db"):
            os.unlink(os.path.join(folder, name))


def post_worker_init(worker) -> None:
    """Import every view (the URLconf) before taking requests: otherwise the first request of
    each new worker (at start, and after every max_requests) paid about a second for it, and
    in a burst of uploads (bench/load.py) several workers paid it at once."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imported for its side effect


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
