"""Fault tests with the real worker: a worker killed mid-task, and a broker that lost its queue.

Nothing is mocked: a `celery worker` process (tests/worker.py) runs the real classifier against
the test's PostgreSQL database through Redis. Each test uses Redis database 5 (set
CELERY_BROKER_URL=redis://127.0.0.1:6379/5) and needs the trained model in ml/models/CURRENT.

    CELERY_BROKER_URL=redis://127.0.0.1:6379/5 DATABASE_URL=postgres://... \
    DATABASE_TEST_NAME=test_portal_security pytest tests/security/test_worker_faults.py
"""

from __future__ import annotations

import pytest
import redis
from django.conf import settings

from diagnosis.models import Analysis, AnalysisStatus
from diagnosis.services import analysis as services
from tests import factories
from tests.worker import celery_worker, require_shared_services, wait_for

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
    image = factories.DermoscopicImageFactory(lesion=lesion)
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
