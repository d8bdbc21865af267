"""Celery tasks of the diagnosis app: thin wrappers that take ids and call services."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init
from django.db import OperationalError

from diagnosis import services

logger = logging.getLogger(__name__)


@worker_process_init.connect
def load_classifier_at_start(**kwargs) -> None:
    """Load the model when a worker process starts, so the first upload does not wait for
    torch's import and the weights. Without a model the worker still starts: analyses then
    fail with a clear message, and a model installed later is picked up on the next task."""
    from diagnosis.classifier import get_classifier
    from ml.inference import ClassifierNotInstalled

    try:
        get_classifier()
    except ClassifierNotInstalled:
        logger.warning("no classifier installed; analyses will fail until one is")


# Words for staff, never an exception's class name; the worker's log keeps the details.
FAILED_UNEXPECTEDLY = (
    "The analysis failed unexpectedly; press Retry to queue it again. If it fails again, "
    "tell your administrator (the worker's log has the details)."
)
DATABASE_BUSY = (
    "The database stayed busy, so the analysis could not be saved; press Retry to queue it again."
)
# A database busy with other writers is waited for, not a failed analysis: the task is sent
# again a few seconds later, this many times, before the analysis fails with DATABASE_BUSY.
DATABASE_BUSY_RETRIES = 5
DATABASE_BUSY_MARKERS = ("database is locked", "database is busy", "deadlock detected")


def database_busy(error: BaseException) -> bool:
    """Whether `error` is contention (SQLite's lock, PostgreSQL's deadlock), which passes."""
    return isinstance(error, OperationalError) and any(
        marker in str(error).lower() for marker in DATABASE_BUSY_MARKERS
    )


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=120,
    time_limit=180,
    max_retries=DATABASE_BUSY_RETRIES,
)
def analyse_image(self, analysis_id: int) -> str:
    try:
        analysis = services.analysis_run(analysis_id=analysis_id)
    except SoftTimeLimitExceeded:
        services.analysis_fail(
            analysis_id=analysis_id,
            reason="The analysis took too long and was stopped; press Retry to queue it again.",
        )
        return "failed"
    except Exception as exc:
        if database_busy(exc) and self.request.retries < DATABASE_BUSY_RETRIES:
            logger.warning("analysis %s: database busy, trying again (%s)", analysis_id, exc)
            raise self.retry(countdown=2 + 3 * self.request.retries) from exc
        logger.exception("analysis %s failed", analysis_id)
        services.analysis_fail(
            analysis_id=analysis_id,
            reason=DATABASE_BUSY if database_busy(exc) else FAILED_UNEXPECTEDLY,
        )
        return "failed"
    return analysis.status if analysis is not None else "skipped"


@shared_task(soft_time_limit=60, time_limit=90)
def requeue_stale_analyses() -> int:
    return services.analysis_requeue_stale()


@shared_task(soft_time_limit=600, time_limit=900)
def purge_expired_originals() -> int:
    """Delete original images past their clinic's retention period."""
    return services.images_purge_expired()
