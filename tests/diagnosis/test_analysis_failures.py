"""How the worker's task answers what goes wrong (issue 13, item 3): a busy database is waited
out and the analysis tried again; anything else fails the analysis with words for staff, never
an exception's class name (the worker's log keeps that)."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from diagnosis import tasks
from diagnosis.models import AnalysisStatus
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def analysis(lesion):
    return factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))


def _run_service_failing(monkeypatch, errors: list[BaseException]) -> list[int]:
    """The task's service raises `errors` one call after another, then runs for real."""
    calls: list[int] = []
    real = tasks.services.analysis_run_batch

    def analysis_run_batch(*, analysis_id: int, batch_size: int):
        calls.append(analysis_id)
        if errors:
            raise errors.pop(0)
        return real(analysis_id=analysis_id, batch_size=batch_size)

    monkeypatch.setattr(tasks.services, "analysis_run_batch", analysis_run_batch)
    return calls


def test_a_locked_database_is_retried_not_a_failed_analysis(monkeypatch, analysis, settings):
    settings.ML_MODELS_ROOT = "/nonexistent"  # the real run then fails for want of a model
    busy = [OperationalError("database is locked"), OperationalError("database is locked")]
    calls = _run_service_failing(monkeypatch, busy)

    tasks.analyse_image.apply(args=[analysis.pk])

    analysis.refresh_from_db()
    assert len(calls) == 3  # twice busy, then the real run
    assert analysis.failure_reason.startswith("No classifier installed")


def test_a_database_busy_for_too_long_fails_in_plain_words(monkeypatch, analysis):
    busy = [OperationalError("database is locked")] * (tasks.DATABASE_BUSY_RETRIES + 1)
    calls = _run_service_failing(monkeypatch, list(busy))

    tasks.analyse_image.apply(args=[analysis.pk])

    analysis.refresh_from_db()
    assert len(calls) == tasks.DATABASE_BUSY_RETRIES + 1
    assert analysis.status == AnalysisStatus.FAILED
    assert analysis.failure_reason == tasks.DATABASE_BUSY
    assert "OperationalError" not in analysis.failure_reason


def test_an_unexpected_error_fails_once_in_plain_words(monkeypatch, analysis):
    calls = _run_service_failing(monkeypatch, [ValueError("broken tensor shape (1, 3, 7)")])

    tasks.analyse_image.apply(args=[analysis.pk])

    analysis.refresh_from_db()
    assert len(calls) == 1
    assert analysis.status == AnalysisStatus.FAILED
    assert analysis.failure_reason == tasks.FAILED_UNEXPECTEDLY
    assert "ValueError" not in analysis.failure_reason and "tensor" not in analysis.failure_reason
