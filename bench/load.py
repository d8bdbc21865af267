"""Load test of the whole portal as production runs it: a burst of uploads through the API from
concurrent clients with one token, then a mixed load of page views from signed-in sessions.

    .venv/bin/python bench/load.py                       # 200 uploads, 20 clients, 300 pages
    .venv/bin/python bench/load.py --uploads 40 --clients 8 --page-views 100   # a quick look
    .venv/bin/python bench/load.py --images ../shared/data/ham10000/images     # distinct images

What it starts, and tears down at exit (also on Ctrl-C):
- PostgreSQL: its own database (`load_bench` on 127.0.0.1:5432, user postgres), created and
  migrated here, dropped at the end;
- Redis: database --redis-db (12) as the broker, the next (13) as the cache (throttle
  counters), both flushed at both ends;
- gunicorn with deploy/gunicorn.conf.py and the production settings on 127.0.0.1:18150 (plain
  HTTP; each request says `X-Forwarded-Proto: https` as nginx in front would);
- bin/worker, one Celery worker with --worker-processes processes (prefork, the model loaded
  in each).

Then: one upload to warm the worker (model load, reported apart); --idle uploads one at a time
on an idle portal; the burst: each of --clients clients uploads its share back to back
(`allow_duplicate`, a `submission_token` each, 429 answered by waiting `Retry-After` and
sending the same request again) while a second thread of the same client waits for each of its
results in order with `?wait=20`; then --page-views page views from --page-clients sessions.

Reported: uploads accepted, analyses finished / failed / lost, 429s, time until the last
result, upload-to-result p50/p95/max as the client saw it and as stored (the analysis's
finished_at), and p50/p95/max of each page. The clinic's hourly upload quota is raised for the
run (UPLOAD_QUOTA_PER_CLINIC_HOUR): the burst is one clinic's. LOAD_BENCH_TRACE=1 also prints
each upload's accepted, stored and seen times.
"""

from __future__ import annotations

import argparse
import datetime
import os
import queue
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.inference import cpu_info  # noqa: E402 - once the root is on the path
from bench.stats import percentile  # noqa: E402

SAMPLES = sorted((ROOT / "samples").glob("*.jpg"))


class Pictures:
    """The files the bench uploads, handed out in turn: the 14 shipped samples by default (each
    sent many times, so every upload matches the earlier copies of its file, the duplicate
    warning's worst case), or a folder's JPEGs (--images), each sent once while they last, as
    a practice's backlog of distinct images would be."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        self.next = 0

    def take(self) -> Path:
        file = self.files[self.next % len(self.files)]
        self.next += 1
        return file


FINAL = {"done", "failed", "not_analysed"}
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379"


def cpu_line() -> str:
    """Cores and the instruction sets inference cares about, from /proc/cpuinfo."""
    cpu = cpu_info()
    flags = cpu["flags"]
    model = cpu["model"] if cpu["model"] != "unknown" else "unknown CPU"
    sets = {
        "AVX2": flags["AVX2"],
        "AVX-512": flags["AVX-512F"],
        "VNNI": flags["AVX-512 VNNI"] or flags["AVX-VNNI"],
        "AMX": flags["AMX-INT8"],
    }
    have = ", ".join(f"{name} {'yes' if on else 'no'}" for name, on in sets.items())
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"{model}; {os.cpu_count()} cores; {have}; load average at start {load}"


def summary(values: list[float], unit: str = "s") -> str:
    if not values:
        return "none"
    scale = 1000 if unit == "ms" else 1
    return (
        f"p50 {percentile(values, 50) * scale:.{0 if unit == 'ms' else 2}f} {unit}, "
        f"p95 {percentile(values, 95) * scale:.{0 if unit == 'ms' else 2}f} {unit}, "
        f"max {max(values) * scale:.{0 if unit == 'ms' else 2}f} {unit} (n={len(values)})"
    )


@dataclass
class Upload:
    lesion: int
    sample: Path
    token: str = field(default_factory=lambda: str(uuid.uuid4()))
    submitted: float = 0.0  # wall clock, time.time()
    accepted: float = 0.0
    seen: float = 0.0
    analysis_id: int | None = None
    status: str = ""
    refused: int = 0  # 429 answers before it was accepted
    error: str = ""


class Portal:
    """The running installation: processes, their environment, and the teardown."""

    def __init__(self, args: argparse.Namespace, *, nginx: bool = False) -> None:
        """nginx: bin/serve-nginx (TLS at nginx, static files) on args.port, gunicorn behind it
        on args.port + 2, for a browser; else gunicorn alone on args.port."""
        self.args = args
        self.nginx = nginx
        self.run_dir = Path(tempfile.mkdtemp(prefix="load-bench-"))
        scheme = "https" if nginx else "http"
        self.base = f"{scheme}://127.0.0.1:{args.port}"
        self.processes: list[subprocess.Popen] = []
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "melanoma_portal.settings.production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": f"{POSTGRES}/{args.database}",
            "CELERY_BROKER_URL": f"{REDIS}/{args.redis_db}",
            "CELERY_RESULT_BACKEND": f"{REDIS}/{args.redis_db}",
            "CACHE_URL": f"{REDIS}/{args.redis_db + 1}",
            "ALLAUTH_TRUSTED_PROXY_COUNT": "0",  # no nginx here: the peer is the client
            "PORTAL_VAR_DIR": str(self.run_dir),
            "MEDIA_ROOT": str(self.run_dir / "media"),
            "LOG_FORMAT": "text",
            "DJANGO_SILENCED_SYSTEM_CHECKS": "diagnosis.W001",  # no encryption key: a bench
            "UPLOAD_QUOTA_PER_CLINIC_HOUR": "100000",
            "GUNICORN_BIND": f"127.0.0.1:{args.port}",
            "WORKER_CONCURRENCY": str(args.worker_processes),
            "PROMETHEUS_MULTIPROC_DIR": str(self.run_dir / "prometheus"),
        }
        if args.web_workers:
            self.env["WEB_CONCURRENCY"] = str(args.web_workers)
        if nginx:
            self.env |= {
                "ALLAUTH_TRUSTED_PROXY_COUNT": "1",
                "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin",
                "HTTPS_PORT": str(args.port),
                "HTTP_PORT": str(args.port + 1),
                "GUNICORN_BIND": f"127.0.0.1:{args.port + 2}",
                "NGINX_RUN_DIR": str(self.run_dir / "nginx"),
                "STATIC_ROOT": str(self.run_dir / "static"),
            }

    # --- set-up -----------------------------------------------------------------------------

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.args.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.args.database}"')
        self._flush_redis()
        subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
            [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
            cwd=ROOT, env=self.env, check=True,
        )  # fmt: skip

    def start(self) -> None:
        worker_log = self.run_dir / "worker.log"
        self._spawn([str(ROOT / "bin" / "worker"), "-n", "load@%h"], worker_log)
        web_log = self.run_dir / "web.log"
        if self.nginx:
            self.env["PORTAL_PYTHON"] = sys.executable
            self._spawn([str(ROOT / "bin" / "serve-nginx")], web_log)
        else:
            gunicorn = [sys.executable, "-m", "gunicorn", "-c"]
            self._spawn([*gunicorn, str(ROOT / "deploy" / "gunicorn.conf.py")], web_log)
        deadline = time.monotonic() + 180
        while " ready." not in worker_log.read_text(errors="replace"):
            self._check_alive(deadline, worker_log)
        while True:
            self._check_alive(deadline, web_log)
            try:
                health = requests.get(f"{self.base}/healthz", timeout=2, verify=False)  # noqa: S501
                if health.status_code == 200:
                    break
            except requests.RequestException:
                pass

    def _spawn(self, command: list[str], log: Path) -> None:
        process = subprocess.Popen(  # noqa: S603 - our own scripts
            command, cwd=ROOT, env=self.env, stdout=log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.processes.append(process)

    def _check_alive(self, deadline: float, log: Path) -> None:
        if any(process.poll() is not None for process in self.processes):
            raise SystemExit(f"a portal process exited:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"not ready in time:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)

    # --- teardown ---------------------------------------------------------------------------

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def drop(self) -> None:
        import psycopg
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.args.database}" WITH (FORCE)')
        self._flush_redis()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def _flush_redis(self) -> None:
        import redis

        for db in (self.args.redis_db, self.args.redis_db + 1):
            redis.Redis.from_url(f"{REDIS}/{db}").flushdb()


@dataclass
class Clinic:
    staff_email: str  # the integration's account, a member of staff
    token: str
    lesions: list[int]
    staff_cookie: str
    doctor_cookie: str
    patients: list[tuple[int, str]]  # id, a name to search for


def seed(clients: int) -> Clinic:
    """A clinic, an integration account with an API token, a doctor with an authenticator,
    one patient and lesion per client; signed-in sessions for the page views."""
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client

    from accounts.models import ApiToken
    from tests import factories

    clinic = factories.ClinicFactory(name="Load clinic")
    integration = factories.UserFactory(clinic=clinic, full_name="Clinic integration")
    doctor = factories.DoctorFactory(clinic=clinic)
    factories.activate_totp(doctor)  # production asks doctors for an authenticator
    _, token = ApiToken.objects.create(user=integration, expiry=datetime.timedelta(days=1))
    patients = [factories.PatientFactory(clinic=clinic) for _ in range(clients)]
    lesions = [factories.LesionFactory(patient=patient).pk for patient in patients]

    def cookie(user) -> str:
        client = Client()
        client.force_login(user)
        name = settings.SESSION_COOKIE_NAME
        return f"{name}={client.cookies[name].value}"

    return Clinic(
        staff_email=integration.email,
        token=token,
        lesions=lesions,
        staff_cookie=cookie(integration),
        doctor_cookie=cookie(doctor),
        patients=[(patient.pk, patient.last_name) for patient in patients],
    )


class ApiClient:
    """One integration client: a requests session with the token, as nginx would forward it."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers.update(
            {"Authorization": f"Token {token}", "X-Forwarded-Proto": "https"}
        )
        self.refused = 0

    def upload(self, upload: Upload) -> None:
        upload.submitted = time.time()
        content = upload.sample.read_bytes()
        while True:
            response = self.session.post(
                f"{self.base}/api/v1/lesions/{upload.lesion}/images/",
                files={"file": (upload.sample.name, content, "image/jpeg")},
                data={"allow_duplicate": "true", "submission_token": upload.token},
                timeout=120,
            )
            if response.status_code != 429:
                break
            upload.refused += 1
            time.sleep(float(response.headers.get("Retry-After", "1")))
        upload.accepted = time.time()
        if response.status_code != 202:
            upload.error = f"upload answered {response.status_code}: {response.text[:200]}"
            return
        upload.analysis_id = response.json()["analysis_id"]

    def wait(self, upload: Upload, timeout: float) -> None:
        if upload.analysis_id is None:
            return
        path = f"/api/v1/analyses/{upload.analysis_id}/"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.session.get(f"{self.base}{path}", params={"wait": 20}, timeout=60)
            if response.status_code == 429:
                self.refused += 1
                time.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            if response.status_code != 200:
                upload.error = f"status answered {response.status_code}: {response.text[:200]}"
                return
            upload.status = response.json()["status"]
            if upload.status in FINAL:
                upload.seen = time.time()
                return
            if float(response.headers.get("X-Status-Held", "0")) <= 0:
                time.sleep(0.25)
        upload.error = f"no result in {timeout:.0f} s"


def burst(
    base: str, clinic: Clinic, pictures: Pictures, uploads: int, clients: int, timeout: float
) -> tuple[list[Upload], int]:
    """Each client uploads its share back to back; a second thread of it waits for each of its
    results in order, as an integration with one sender and one receiver would."""
    shares = [
        [
            Upload(lesion=clinic.lesions[c], sample=pictures.take())
            for _ in range(uploads // clients + (1 if c < uploads % clients else 0))
        ]
        for c in range(clients)
    ]
    api_clients = [ApiClient(base, clinic.token) for _ in range(clients)]
    waiters: list[threading.Thread] = []
    senders: list[threading.Thread] = []
    waiter_clients: list[ApiClient] = []
    start = threading.Barrier(clients)

    for client, share in zip(api_clients, shares, strict=True):
        accepted: queue.Queue[Upload | None] = queue.Queue()
        waiter_client = ApiClient(base, clinic.token)
        waiter_clients.append(waiter_client)

        def send(client=client, share=share, accepted=accepted) -> None:
            start.wait()
            for upload in share:
                client.upload(upload)
                accepted.put(upload)
            accepted.put(None)

        def receive(accepted=accepted, waiter_client=waiter_client) -> None:
            while (upload := accepted.get()) is not None:
                waiter_client.wait(upload, timeout)

        senders.append(threading.Thread(target=send))
        waiters.append(threading.Thread(target=receive))
    for thread in senders + waiters:
        thread.start()
    for thread in senders + waiters:
        thread.join()
    status_refused = sum(waiter.refused for waiter in waiter_clients)
    return [upload for share in shares for upload in share], status_refused


def report_uploads(title: str, uploads: list[Upload], started: float) -> None:
    from diagnosis.models import Analysis

    ids = [upload.analysis_id for upload in uploads if upload.analysis_id]
    stored = {
        row["pk"]: row
        for row in Analysis.objects.filter(pk__in=ids).values("pk", "status", "finished_at")
    }
    statuses = [row["status"] for row in stored.values()]
    finished = [row["finished_at"].timestamp() for row in stored.values() if row["finished_at"]]
    seen = [u.seen - u.submitted for u in uploads if u.seen]
    to_stored = [
        stored[u.analysis_id]["finished_at"].timestamp() - u.submitted
        for u in uploads
        if u.analysis_id in stored and stored[u.analysis_id]["finished_at"]
    ]
    shown_after = [
        u.seen - stored[u.analysis_id]["finished_at"].timestamp()
        for u in uploads
        if u.seen and u.analysis_id in stored and stored[u.analysis_id]["finished_at"]
    ]
    errors = [u.error for u in uploads if u.error]
    print(f"\n== {title}")
    print(f"uploads sent {len(uploads)}, accepted {len(ids)}, "
          f"429 answers to uploads {sum(u.refused for u in uploads)}")  # fmt: skip
    counts = {status: statuses.count(status) for status in sorted(set(statuses))}
    lost = len(uploads) - len(stored)
    print(f"analyses: {counts}; lost (accepted but not in the database, or never accepted): "
          f"{lost}; failed {counts.get('failed', 0)}")  # fmt: skip
    if finished:
        last_seen = max(u.seen for u in uploads if u.seen)
        print(f"time until the last result stored: {max(finished) - started:.2f} s; "
              f"last seen by its client: {last_seen - started:.2f} s")  # fmt: skip
    print(f"upload-to-result as the client saw it: {summary(seen)}")
    print(f"upload-to-result stored (finished_at): {summary(to_stored)}")
    print(f"result seen after it was stored:       {summary(shown_after, 'ms')}")
    if os.environ.get("LOAD_BENCH_TRACE"):
        for u in sorted(uploads, key=lambda u: u.submitted):
            done = stored.get(u.analysis_id, {}).get("finished_at")
            print(f"  {u.analysis_id} lesion {u.lesion}: accepted {u.accepted - started:.2f} "
                  f"stored {done.timestamp() - started if done else -1:.2f} "
                  f"seen {u.seen - started:.2f}")  # fmt: skip
    for error in errors[:5]:
        print(f"  error: {error}")
    if len(errors) > 5:
        print(f"  ... {len(errors) - 5} more errors")


def page_load(base: str, clinic: Clinic, views: int, threads: int) -> dict[str, list[float]]:
    """Signed-in people reading pages at once: dashboard, worklist (doctor), patient list and
    search, a lesion page, a result page, each chosen at random. Anything but 200 is an error."""
    from diagnosis.models import Analysis

    analyses = list(Analysis.objects.values_list("pk", flat=True)[:200])
    pages = {
        "dashboard": lambda: ("/", clinic.staff_cookie),
        "worklist": lambda: ("/worklist/", clinic.doctor_cookie),
        "patient list": lambda: ("/patients/", clinic.staff_cookie),
        "patient search": lambda: (
            f"/patients/?q={random.choice(clinic.patients)[1]}",  # noqa: S311
            clinic.staff_cookie,
        ),
        "lesion page": lambda: (
            f"/lesions/{random.choice(clinic.lesions)}/",  # noqa: S311
            clinic.staff_cookie,
        ),
        "result page": lambda: (
            f"/analyses/{random.choice(analyses)}/",  # noqa: S311
            clinic.doctor_cookie,
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in pages}
    errors: list[str] = []
    lock = threading.Lock()
    todo = iter(range(views))

    def reader() -> None:
        session = requests.Session()
        session.headers["X-Forwarded-Proto"] = "https"
        while True:
            with lock:
                if next(todo, None) is None:
                    return
            name = random.choice(list(pages))  # noqa: S311
            path, cookie = pages[name]()
            started = time.perf_counter()
            response = session.get(
                f"{base}{path}", headers={"Cookie": cookie}, allow_redirects=False, timeout=60
            )
            elapsed = time.perf_counter() - started
            with lock:
                times[name].append(elapsed)
                if response.status_code != 200:
                    errors.append(f"{name} {path}: {response.status_code}")

    workers = [threading.Thread(target=reader) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    took = time.perf_counter() - started
    print(f"\n== {views} page views from {threads} signed-in sessions at once: {took:.1f} s, "
          f"{views / took:.1f} pages/s, errors {len(errors)}")  # fmt: skip
    for name, values in times.items():
        print(f"  {name:15} {summary(values, 'ms')}")
    for error in errors[:5]:
        print(f"  error: {error}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--idle", type=int, default=5, help="single uploads on an idle portal")
    parser.add_argument("--page-views", type=int, default=300)
    parser.add_argument("--page-clients", type=int, default=10)
    parser.add_argument("--web-workers", type=int, default=0, help="default: 2 x cores + 1")
    parser.add_argument("--worker-processes", type=int, default=2)
    parser.add_argument("--port", type=int, default=18150)
    parser.add_argument("--database", default="load_bench")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per result")
    parser.add_argument("--redis-db", type=int, default=12, help="broker; the cache uses +1")
    parser.add_argument(
        "--images",
        type=Path,
        help="a folder of JPEGs to upload, each once, instead of the 14 shipped samples "
        "again and again (e.g. ../shared/data/ham10000/images)",
    )
    args = parser.parse_args()
    files = sorted(args.images.glob("*.jpg")) if args.images else SAMPLES
    if not files:
        sys.exit(f"no JPEG images in {args.images or 'samples/'}")
    pictures = Pictures(files)

    portal = Portal(args)
    os.environ.update(portal.env)
    # Ctrl-C or a kill: tear down all the same.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    print(f"CPU: {cpu_line()}")
    print("This machine's CPU is shared with other jobs: figures are noisy.")
    try:
        portal.create_database()
        clinic = seed(args.clients)
        portal.start()
        from django.conf import settings

        web_workers = args.web_workers or 2 * (os.cpu_count() or 1) + 1
        print(f"portal: gunicorn {web_workers} workers x {os.environ.get('GUNICORN_THREADS', 8)} "
              f"threads (production settings), Celery worker with {args.worker_processes} "
              f"processes, PostgreSQL database {args.database}, Redis broker and cache; "
              f"torch threads {settings.ML_TORCH_THREADS}")  # fmt: skip

        client = ApiClient(portal.base, clinic.token)
        warm = Upload(lesion=clinic.lesions[0], sample=pictures.take())
        client.upload(warm)
        client.wait(warm, args.timeout)
        print(f"warm-up upload (workers load the model): {warm.seen - warm.submitted:.2f} s "
              f"{warm.status} {warm.error}")  # fmt: skip
        # Unmeasured: a small burst reaches every web and worker process once (a worker process
        # loads the model, a web process connects to the database and the broker, on first
        # use), as a portal that has been running a while has done.
        warm_uploads, _ = burst(
            portal.base, clinic, pictures, 2 * args.clients, args.clients, args.timeout
        )
        print(f"warm-up burst of {len(warm_uploads)} uploads: "
              f"{sum(1 for u in warm_uploads if u.status == 'done')} done")  # fmt: skip

        idle = []
        started = time.time()
        for _ in range(args.idle):
            upload = Upload(lesion=clinic.lesions[0], sample=pictures.take())
            client.upload(upload)
            client.wait(upload, args.timeout)
            idle.append(upload)
        report_uploads(f"{args.idle} single uploads, one at a time, idle portal", idle, started)

        started = time.time()
        uploads, status_refused = burst(
            portal.base, clinic, pictures, args.uploads, args.clients, args.timeout
        )
        report_uploads(
            f"burst: {args.uploads} uploads from {args.clients} clients with one token",
            uploads,
            started,
        )
        print(f"429 answers to status reads: {status_refused}")
        page_load(portal.base, clinic, args.page_views, args.page_clients)
    finally:
        portal.stop()
        portal.drop()


if __name__ == "__main__":
    main()
