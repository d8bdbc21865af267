"""Seconds from upload to result for one image with one worker (median of N, default 10).

    # embedded defaults: SQLite, filesystem broker
    .venv/bin/python bench/upload_to_result.py
    # PostgreSQL + Redis
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/3 .venv/bin/python bench/upload_to_result.py

Each run POSTs one sample image to the upload page (validation, EXIF stripping, storage,
enqueue on commit), then polls the database until the analysis is done: the time a person
waits. One worker process, started here, serves every run; a warm-up upload first pays the
model's one-off load, which is reported separately. Runs are sequential, so there is no queue.
State goes to a temporary folder (SQLite file, media, broker folders) unless PORTAL_VAR_DIR is set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.celery_worker import solo_worker  # noqa: E402 - once the root is on the path

SAMPLES = sorted((ROOT / "samples").glob("*.jpg"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=180, help="seconds per analysis")
    args = parser.parse_args()

    os.environ.setdefault("PORTAL_VAR_DIR", tempfile.mkdtemp(prefix="bench-portal-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "melanoma_portal.settings.dev")
    os.environ.setdefault("DJANGO_DEBUG", "0")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    from diagnosis.models import Analysis
    from tests import factories

    call_command("migrate", verbosity=0)
    clinic = factories.ClinicFactory(name="Bench clinic")
    staff = factories.UserFactory(clinic=clinic)
    patient = factories.PatientFactory(clinic=clinic)
    lesion = factories.LesionFactory(patient=patient)
    client = Client()
    client.force_login(staff)

    worker_log = Path(os.environ["PORTAL_VAR_DIR"]) / "bench-worker.log"
    with solo_worker(worker_log, ready_within=90):

        def one(index: int) -> tuple[float, Analysis]:
            sample = SAMPLES[index % len(SAMPLES)]
            started = time.perf_counter()
            with sample.open("rb") as handle:
                response = client.post(
                    reverse("diagnosis:upload", args=[patient.pk]),
                    {"lesion": lesion.pk, "submission_token": _uuid(), "image": handle},
                )
            assert response.status_code == 302, response.content[:500]
            analysis_id = int(response["Location"].rstrip("/").rsplit("/", 1)[-1])
            while True:
                analysis = Analysis.objects.get(pk=analysis_id)
                if analysis.status in ("done", "failed", "not_analysed"):
                    break
                if time.perf_counter() - started > args.timeout:
                    sys.exit(f"analysis {analysis_id} not finished in {args.timeout}s")
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
            if analysis.status != "done":
                why = analysis.failure_reason or analysis.gate_message
                sys.exit(f"analysis {analysis.status}: {why}")
            return elapsed, analysis

        cold, first = one(0)
        results = [one(i + 1) for i in range(args.runs)]

    seconds = [elapsed for elapsed, _ in results]
    print(f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
          f"broker: {settings.CELERY_BROKER_URL.split(':', 1)[0]}, model: {first.model_version}, "
          f"torch threads: {settings.ML_TORCH_THREADS}")  # fmt: skip
    print(f"first upload (worker loads the model): {cold:.2f} s "
          f"(model load {first.timings_ms.get('model_load', 0) / 1000:.2f} s)")  # fmt: skip
    median = statistics.median(seconds)
    print(f"upload to result, {args.runs} runs, one worker: median {median:.2f} s, "
          f"min {min(seconds):.2f} s, max {max(seconds):.2f} s")  # fmt: skip
    for key in ("queue_wait", "preprocess", "inference", "heatmaps"):
        values = [a.timings_ms.get(key) for _, a in results if a.timings_ms.get(key) is not None]
        if values:
            print(f"  median {key}: {statistics.median(values):.0f} ms")


def _uuid() -> str:
    import uuid

    return str(uuid.uuid4())


if __name__ == "__main__":
    main()
