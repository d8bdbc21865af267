"""Queues per kind of work, on the broker the suite runs with (Redis or RabbitMQ): analyses go
to `inference`, the beat schedule's tasks to `housekeeping`, and a worker takes only the queues
it is given, so each kind of work has its own workers and concurrency."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from diagnosis.models import Analysis, AnalysisStatus
from diagnosis.services.analysis import _enqueue
from diagnosis.tasks import requeue_stale_analyses
from melanoma_portal.ops import queue_depths
from tests import factories
from tests.worker import celery_worker, purge_queues, require_shared_services, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def empty_queues():
    require_shared_services()
    purge_queues()
    yield
    purge_queues()


def _depth(queue: str) -> int:
    return queue_depths()[queue][0]


def _status(analysis: Analysis) -> str:
    return Analysis.objects.values_list("status", flat=True).get(pk=analysis.pk)


def test_each_kind_of_work_goes_to_its_queue_and_only_its_workers_take_it(empty_queues, tmp_path):
    analysis = factories.AnalysisFactory()
    _enqueue(analysis)  # committed already: sent at once
    assert (_depth("inference"), _depth("housekeeping")) == (1, 0)

    # Stale for twenty minutes: housekeeping's requeue sends it to inference once more.
    Analysis.objects.filter(pk=analysis.pk).update(
        queued_at=timezone.now() - datetime.timedelta(minutes=20)
    )
    with celery_worker(queues=["housekeeping"]):
        requeue_stale_analyses.apply_async()
        wait_for(
            lambda: _depth("inference") == 2,
            timeout=60,
            message="the housekeeping worker did not re-send the stale analysis",
        )
        assert _status(analysis) == AnalysisStatus.QUEUED  # a housekeeping worker never runs it

    empty = tmp_path / "no-models"  # no classifier: the analysis fails fast, with a reason
    empty.mkdir()
    with celery_worker(queues=["inference"], env={"ML_MODELS_ROOT": str(empty)}) as worker:
        wait_for(
            lambda: _depth("inference") == 0 and _status(analysis) == AnalysisStatus.FAILED,
            timeout=60,
            message=f"the inference worker did not take its queue:\n{worker.log()[-3000:]}",
        )
    analysis.refresh_from_db()
    assert analysis.failure_reason.startswith("No classifier installed")
    assert analysis.attempts == 1  # the second delivery found it finished and left it alone


def test_worker_settings_hold_one_unacknowledged_analysis_at_a_time():
    from melanoma_portal.celery import app

    def queue(task: str) -> str:
        return app.amqp.router.route({}, task)["queue"].name

    assert queue("diagnosis.tasks.analyse_image") == "inference"
    assert queue("diagnosis.tasks.purge_expired_originals") == "housekeeping"
    assert queue("reports.tasks.render_pdf") == "reports"
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
