"""Several hosts, simulated honestly: two worker "hosts" (separate processes with their own
hostnames, prefork pools and JSON logs) and the web tier (gunicorn) on PostgreSQL, the broker
the suite runs with and moto's S3 server. 50 uploads go through the REST API; one worker host
is SIGKILLed mid-way; all 50 analyses finish on the other, none lost, none analysed twice.

Each worker logs one JSON line per finished task (melanoma_portal.task_signals), so the logs
say which host finished which analysis: the proof that nothing ran to completion twice.
"""

from __future__ import annotations

import datetime
import json
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from django.conf import settings

from accounts.models import ApiToken
from diagnosis.models import Analysis, AnalysisStatus
from tests import factories
from tests.web import gunicorn_server
from tests.worker import WorkerProcess, celery_worker, purge_queues, require_shared_services

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

UPLOADS = 50
KILL_AFTER = 6  # analyses host A finishes before it is killed
SAMPLES = sorted((Path(settings.BASE_DIR) / "samples").glob("*.jpg"))


def _lines(worker: WorkerProcess) -> list[dict]:
    return [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]


def _finished(worker: WorkerProcess) -> list[dict]:
    """The analysis tasks this worker host finished, as its log says: one JSON object a line.
    A task runs its analysis in a batch with others waiting (diagnosis.services.batch): this
    line names only its own; `_analysed` says which analyses the batch finished."""
    return [line for line in _lines(worker) if line.get("task") == "diagnosis.tasks.analyse_image"]


def _analysed(worker: WorkerProcess) -> list[dict]:
    """One line per analysis this host's batches finished (diagnosis.tasks._log_finished)."""
    return [line for line in _lines(worker) if "analysis_outcome" in line]


def _wait(predicate, timeout: float, message) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(message())
        time.sleep(0.25)


def test_fifty_uploads_survive_a_worker_host_killed_mid_way(s3_bucket):
    require_shared_services()
    if not (Path(settings.ML_MODELS_ROOT) / "CURRENT").exists():
        pytest.skip(f"no trained model installed: {settings.ML_MODELS_ROOT}/CURRENT is missing")
    purge_queues()
    staff = factories.UserFactory(clinic=factories.ClinicFactory())
    lesions = [
        factories.LesionFactory(patient=factories.PatientFactory(clinic=staff.clinic))
        for _ in range(5)
    ]
    _, token = ApiToken.objects.create(user=staff, expiry=datetime.timedelta(days=1))
    host_env = {
        **s3_bucket.env,
        "LOG_FORMAT": "json",
        "ML_TORCH_THREADS": "1",
        # Redis gives a dead worker's message to another after this; RabbitMQ at once.
        "CELERY_VISIBILITY_TIMEOUT_S": "20",
    }
    worker_args = {"env": host_env, "pool": "prefork", "queues": ["inference"]}

    with (
        celery_worker(hostname="host-a", **worker_args) as host_a,
        celery_worker(hostname="host-b", **worker_args) as host_b,
        gunicorn_server(env=s3_bucket.env) as web,
    ):
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        started = time.monotonic()
        ids = []
        for n in range(UPLOADS):
            sample = SAMPLES[n % len(SAMPLES)]
            response = session.post(
                f"{web}/api/v1/lesions/{lesions[n % len(lesions)].pk}/images/",
                files={"file": (sample.name, sample.read_bytes(), "image/jpeg")},
                # Fifty uploads of fourteen samples: the duplicate warning would stop them.
                data={"allow_duplicate": "true"},
                timeout=60,
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["analysis_id"])
        uploaded_s = time.monotonic() - started

        _wait(
            lambda: len(_analysed(host_a)) >= KILL_AFTER,
            timeout=180,
            message=lambda: f"host A finished too few:\n{host_a.log()[-3000:]}",
        )
        host_a.kill()  # SIGKILL, pool and all: a host lost mid-task, its message unacknowledged
        killed_at = time.monotonic()
        done_before_kill = Analysis.objects.filter(status=AnalysisStatus.DONE).count()
        assert done_before_kill < UPLOADS - 10, "the kill came too late to mean anything"

        _wait(
            lambda: Analysis.objects.filter(status=AnalysisStatus.DONE).count() == UPLOADS,
            timeout=300,
            message=lambda: (
                f"{Analysis.objects.exclude(status=AnalysisStatus.DONE).count()} not done:\n"
                f"{host_b.log()[-3000:]}"
            ),
        )
        finished_s = time.monotonic() - started
        by_a, by_b = _analysed(host_a), _analysed(host_b)
        tasks_b = _finished(host_b)

    # Nothing lost: every upload has a result, and its files, in the bucket.
    analyses = list(Analysis.objects.filter(pk__in=ids).select_related("image"))
    assert len(analyses) == UPLOADS and all(a.status == AnalysisStatus.DONE for a in analyses)
    keys = s3_bucket.keys()
    for analysis in analyses:
        assert {
            analysis.image.file.name,
            analysis.image.thumbnail.name,
            analysis.heatmap_top.name,
            analysis.heatmap_melanoma.name,
        } <= keys
    # Nothing analysed twice: each analysis finished ("done") exactly once, on one host or the
    # other, alone or in a batch; only the batch host A held when it died was started again.
    done = Counter(
        line["analysis_id"] for line in by_a + by_b if line["analysis_outcome"] == "done"
    )
    assert set(done) <= set(ids) and set(done.values()) == {1}
    # Host A may be killed after committing results but before logging them: their messages
    # (or the lead's, sent again) come to host B, which finds them finished and leaves them.
    # At most the one batch host A was running.
    batch = settings.ANALYSIS_BATCH_SIZE
    unlogged = set(ids) - set(done)
    assert len(unlogged) <= batch, unlogged
    assert all(line["worker"].startswith("host-b@") for line in tasks_b)
    restarted = [a for a in analyses if a.attempts > 1]
    assert len(restarted) <= batch and all(a.attempts == 2 for a in restarted)
    assert len(by_a) >= KILL_AFTER and len(by_b) >= UPLOADS - len(by_a) - len(unlogged)

    after_kill = [line for line in by_b if line["analysis_outcome"] == "done"]
    # A task's seconds are its whole batch's: per analysis, host B's task time over its results.
    per_analysis = sum(line["seconds"] for line in tasks_b) / max(1, len(after_kill))
    print(  # the figures docs/deploy.md's sizing quotes; shown with pytest -s
        f"\nmulti-host: {UPLOADS} uploads through gunicorn in {uploaded_s:.1f}s "
        f"({UPLOADS / uploaded_s:.1f}/s); host A finished {len(by_a)} before SIGKILL, host B "
        f"{len(after_kill)} in all; all done {finished_s:.1f}s after the first upload, "
        f"{time.monotonic() - killed_at:.1f}s after the kill; host B's task time per analysis "
        f"{per_analysis:.2f}s on one core-thread; restarted: "
        f"{[a.pk for a in restarted]}"
    )
