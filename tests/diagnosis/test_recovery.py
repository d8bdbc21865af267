"""Recovering analyses a crash left behind, on any broker, and telling when beat has stopped.

The whole-worker SIGKILL on the filesystem broker, with real processes, is in
tests/security/test_worker_faults.py; these pin the sweep's rules and the heartbeat's reading.
"""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from diagnosis import services
from diagnosis.models import Analysis, AnalysisStatus, Heartbeat
from diagnosis.models.housekeeping import SWEEP
from diagnosis.selectors import sweep_late
from diagnosis.tasks import requeue_stale_analyses
from tests import factories


@pytest.fixture
def limits(settings):
    settings.ANALYSIS_TIME_LIMIT_S = 180
    settings.ANALYSIS_MAX_ATTEMPTS = 3
    settings.REQUEUE_QUEUED_AFTER_S = 900
    settings.REQUEUE_STALE_EVERY_S = 60
    return settings


def _running(lesion, *, started_s_ago: float, attempts: int = 1) -> Analysis:
    """Running, claimed `started_s_ago`, queued just before: a worker died holding it."""
    now = timezone.now()
    analysis = factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
    Analysis.objects.filter(pk=analysis.pk).update(
        status=AnalysisStatus.RUNNING,
        queued_at=now - datetime.timedelta(seconds=started_s_ago + 1),
        started_at=now - datetime.timedelta(seconds=started_s_ago),
        attempts=attempts,
    )
    return analysis


def test_sweep_requeues_a_running_analysis_once_its_time_limit_has_passed(
    limits, lesion, django_capture_on_commit_callbacks
):
    lost = _running(lesion, started_s_ago=181)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.analysis_requeue_stale() == 1
    lost.refresh_from_db()
    assert lost.status == AnalysisStatus.QUEUED
    assert timezone.now() - lost.queued_at < datetime.timedelta(seconds=5)
    assert len(callbacks) == 1  # the message, sent once the row is committed


def test_sweep_leaves_a_running_analysis_within_its_time_limit(
    limits, lesion, django_capture_on_commit_callbacks
):
    busy = _running(lesion, started_s_ago=170)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.analysis_requeue_stale() == 0
    busy.refresh_from_db()
    assert busy.status == AnalysisStatus.RUNNING and not callbacks


def test_sweep_follows_the_configured_time_limit(limits, lesion):
    limits.ANALYSIS_TIME_LIMIT_S = 20
    _running(lesion, started_s_ago=25)
    assert services.analysis_requeue_stale() == 1


def test_an_analysis_interrupted_too_often_fails_with_a_reason_instead_of_looping(
    limits, lesion, django_capture_on_commit_callbacks
):
    poison = _running(lesion, started_s_ago=400, attempts=3)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.analysis_requeue_stale()
    poison.refresh_from_db()
    assert poison.status == AnalysisStatus.FAILED and not callbacks
    assert poison.failure_reason.startswith("The analysis was interrupted 3 times")
    assert "press Retry" in poison.failure_reason


def test_the_sweep_task_records_its_heartbeat(limits, db):
    assert sweep_late() != ""
    requeue_stale_analyses()
    assert Heartbeat.objects.get(name=SWEEP).at > timezone.now() - datetime.timedelta(seconds=5)
    assert sweep_late() == ""


def test_sweep_counts_as_late_after_three_missed_runs(limits, db):
    now = timezone.now()
    Heartbeat.objects.create(name=SWEEP, at=now - datetime.timedelta(seconds=3 * 60 + 59))
    assert sweep_late(now=now) == ""
    assert "celery beat" in sweep_late(now=now + datetime.timedelta(seconds=2))


def test_dashboard_says_when_beat_has_stopped(limits, client, staff):
    client.force_login(staff)
    Heartbeat.objects.create(name=SWEEP, at=timezone.now() - datetime.timedelta(hours=2))
    page = client.get(reverse("diagnosis:dashboard")).content.decode()
    assert 'id="beat-late"' in page and "bin/beat" in page

    requeue_stale_analyses()
    assert 'id="beat-late"' not in client.get(reverse("diagnosis:dashboard")).content.decode()


def test_readyz_reports_beat_without_taking_the_web_server_out_of_rotation(limits, client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded" and "never run" in response.json()["beat"]

    requeue_stale_analyses()
    body = client.get("/readyz").json()
    assert (body["status"], body["beat"], body["checks"]["database"]) == ("ok", "ok", "ok")
