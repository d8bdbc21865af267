"""Fault tests with the real worker: a worker killed mid-task, and a broker that lost its queue.

Nothing is mocked: a `celery worker` process (tests/worker.py) runs the real classifier against
the test's PostgreSQL database through Redis, or through the filesystem broker (the embedded
default) with `celery beat` in its own process. The Redis tests use Redis database 5 (set
CELERY_BROKER_URL=redis://127.0.0.1:6379/5); all need the trained model in ml/models/CURRENT.

    CELERY_BROKER_URL=redis://127.0.0.1:6379/5 DATABASE_URL=postgres://... \
    DATABASE_TEST_NAME=test_portal_security pytest tests/security/test_worker_faults.py
"""

from __future__ import annotations

import time

import pytest
import redis
from django.conf import settings
from django.db import connection
from kombu import Connection

from diagnosis.models import Analysis, AnalysisStatus
from diagnosis.services import analysis as services
from melanoma_portal.celery import app
from tests import factories
from tests.worker import celery_beat, celery_worker, require_shared_services, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The killed task's message comes back after the visibility timeout; short here, 600 s in prod.
VISIBILITY_TIMEOUT_S = 3
PAUSE_S = 30  # long enough to kill the worker in, never reached


def _require_model() -> None:
    current = settings.ML_MODELS_ROOT / "CURRENT"
    if not current.exists():
        pytest.skip(f"no trained classifier installed ({current} missing): analyses cannot finish")


@pytest.fixture
def broker():
    require_shared_services()
    _require_model()
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()  # our own Redis database: leftovers of an earlier run only
    yield client
    client.flushdb()


def _queued_analysis(clinic) -> Analysis:
    patient = factories.PatientFactory(clinic=clinic)
    lesion = factories.LesionFactory(patient=patient)
    # A real dermoscopic image: the worker's image gate refuses the factories' flat picture.
    image = factories.DermoscopicImageFactory(lesion=lesion, sample=True)
    return Analysis.objects.create(image=image)


def _status(pk: int) -> str:
    return Analysis.objects.values_list("status", flat=True).get(pk=pk)


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_analysis_finishes_it_after_restart(broker, clinic):
    analysis = _queued_analysis(clinic)
    env = {
        "ANALYSIS_TEST_PAUSE_S": str(PAUSE_S),
        "CELERY_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S),
    }
    with celery_worker(env=env) as worker:
        services._enqueue(analysis)
        wait_for(lambda: _status(analysis.pk) == "running", timeout=60, message="never started")
        worker.kill()  # SIGKILL while the analysis is running, its message unacknowledged
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.RUNNING and analysis.attempts == 1

    with celery_worker(env=env) as worker:
        wait_for(
            lambda: _status(analysis.pk) in ("done", "failed"),
            timeout=120,
            message=f"not finished after restart; worker log:\n{worker.log()[-3000:]}",
        )
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.DONE, analysis.failure_reason
    assert analysis.attempts == 2
    assert analysis.probabilities and analysis.model_version
    assert analysis.heatmap_top and analysis.heatmap_melanoma


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_batch_finishes_every_analysis_once_after_restart(broker, clinic):
    analyses = [_queued_analysis(clinic) for _ in range(4)]
    lead = analyses[0]
    env = {
        "ANALYSIS_TEST_PAUSE_S": str(PAUSE_S),
        "CELERY_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S),
        "ANALYSIS_BATCH_SIZE": "4",
    }
    with celery_worker(env=env) as worker:
        for analysis in analyses:
            services._enqueue(analysis)
        wait_for(
            lambda: all(_status(a.pk) == "running" for a in analyses),
            timeout=60,
            message=f"the batch never started:\n{worker.log()[-3000:]}",
        )
        worker.kill()  # SIGKILL with all four claimed by the first task's batch
    claimed = Analysis.objects.filter(pk__in=[a.pk for a in analyses])
    assert {(a.status, a.attempts, a.batch_lead) for a in claimed} == {("running", 1, lead.pk)}

    with celery_worker(env=env) as worker:
        wait_for(
            lambda: all(_status(a.pk) in ("done", "failed") for a in analyses),
            timeout=180,
            message=f"not finished after restart; worker log:\n{worker.log()[-3000:]}",
        )
        log = worker.log()
    for analysis in analyses:
        analysis.refresh_from_db()
        assert analysis.status == AnalysisStatus.DONE, analysis.failure_reason
        # Interrupted once, run once more: the lead alone, the others sent back to the queue.
        assert analysis.attempts == 2
        assert log.count(f"analysis {analysis.pk} done (") == 1  # finished once, not twice
    assert "runs alone; the rest of its batch is queued" in log


@pytest.mark.django_db(transaction=True)
def test_analyses_queued_when_the_broker_loses_its_queue_are_finished_by_the_sweep(broker, clinic):
    analyses = [_queued_analysis(clinic) for _ in range(3)]
    for analysis in analyses:
        services._enqueue(analysis)
    assert broker.llen(settings.CELERY_QUEUE_INFERENCE) == 3
    broker.flushdb()  # Redis restarted without persistence: every queued message is gone
    assert broker.llen(settings.CELERY_QUEUE_INFERENCE) == 0

    with celery_worker(env={"CELERY_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S)}) as worker:
        # The beat schedule runs this sweep every few minutes; call it now, as beat would.
        assert services.analysis_requeue_stale(older_than_s=0) == 3
        wait_for(
            lambda: all(_status(a.pk) in ("done", "failed") for a in analyses),
            timeout=180,
            message=f"not all finished; worker log:\n{worker.log()[-3000:]}",
        )
    statuses = {a.pk: _status(a.pk) for a in analyses}
    assert set(statuses.values()) == {"done"}, statuses
    # Each ran once: the sweep re-sent them, nothing ran twice.
    assert set(Analysis.objects.filter(pk__in=statuses).values_list("attempts", flat=True)) == {1}


# The filesystem broker test shortens the task's limits through settings (the worker's
# environment); production runs 120 s soft, 180 s hard, and the sweep every 60 s.
FS_TIME_LIMIT_S = 20
FS_SWEEP_EVERY_S = 2


@pytest.fixture
def filesystem_broker(tmp_path):
    """The embedded default broker in a folder of this test's own, and the environment that
    points a worker and beat at it with short limits."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: a worker process cannot see an in-memory SQLite database")
    _require_model()
    var = tmp_path / "var"
    env = {
        "CELERY_BROKER_URL": "filesystem://",
        "PORTAL_VAR_DIR": str(var),
        "CELERY_RESULT_BACKEND": f"file://{var / 'celery-results'}",
        "ANALYSIS_SOFT_TIME_LIMIT_S": str(FS_TIME_LIMIT_S - 5),
        "ANALYSIS_TIME_LIMIT_S": str(FS_TIME_LIMIT_S),
        "REQUEUE_STALE_EVERY_S": str(FS_SWEEP_EVERY_S),
    }
    return var, env


def _send_through_the_filesystem_broker(var, analysis_id: int) -> None:
    """What the web process does on upload, through the worker's broker folder (this test
    process's own Celery app is configured for Redis)."""
    options = {
        "data_folder_in": str(var / "celery-broker"),
        "data_folder_out": str(var / "celery-broker"),
        "control_folder": str(var / "celery-control"),
        "processed_folder": str(var / "celery-processed"),
        "store_processed": False,
    }
    with Connection("filesystem://", transport_options=options) as broker:
        app.send_task(
            "diagnosis.tasks.analyse_image",
            args=[analysis_id],
            connection=broker,
            ignore_result=True,
        )


@pytest.mark.django_db(transaction=True)
def test_whole_worker_killed_on_the_filesystem_broker_finishes_within_the_limit_plus_a_minute(
    filesystem_broker, clinic
):
    var, env = filesystem_broker
    analysis = _queued_analysis(clinic)
    with celery_worker(env={**env, "ANALYSIS_TEST_PAUSE_S": str(PAUSE_S)}, pool="prefork") as w:
        _send_through_the_filesystem_broker(var, analysis.pk)
        wait_for(
            lambda: _status(analysis.pk) == "running",
            timeout=60,
            message=f"never started; worker log:\n{w.log()[-3000:]}",
        )
        w.kill()  # the whole worker, pool and all: SIGKILL to its process group
        killed_at = time.monotonic()
    # The filesystem broker removed the message when the worker fetched it: it is gone.
    assert not list((var / "celery-broker").glob("*.msg"))
    assert _status(analysis.pk) == "running"

    deadline = FS_TIME_LIMIT_S + 60
    with (
        celery_beat(schedule=var / "celerybeat-schedule", env=env) as beat,
        celery_worker(env=env, pool="prefork") as worker,
    ):
        wait_for(
            lambda: _status(analysis.pk) in ("done", "failed"),
            timeout=max(deadline - (time.monotonic() - killed_at), 1),
            message=(
                f"not finished {deadline} s after the kill; worker log:\n{worker.log()[-3000:]}"
                f"\nbeat log:\n{beat.log()[-1500:]}"
            ),
        )
    assert time.monotonic() - killed_at <= deadline
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.DONE, analysis.failure_reason
    assert analysis.attempts == 2
    assert analysis.probabilities and analysis.heatmap_top
