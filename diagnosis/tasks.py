"""Celery tasks of the diagnosis app: thin wrappers that take ids and call services."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init
from django.conf import settings
from django.db import OperationalError

from diagnosis import services
from diagnosis.models import AnalysisStatus
from diagnosis.models.housekeeping import SWEEP
from melanoma_portal import metrics

logger = logging.getLogger(__name__)


@worker_process_init.connect
def load_classifier_at_start(**kwargs) -> None:
    """Load the model and its image gate when a worker process starts, so the first upload
    does not wait for torch's import and the weights. Without a model the worker still
    starts: analyses then fail with a clear message, and a model installed later is picked up
    on the next task."""
    from diagnosis.classifier import get_gate
    from ml.served import ClassifierNotInstalled

    try:
        # The shipped versions join the model registry the first time a worker starts.
        services.model_registry_sync()
    except Exception:
        logger.exception("the model registry could not be brought up to date")
    try:
        get_gate()  # loads the classifier first
    except ClassifierNotInstalled:
        logger.warning("no classifier installed; analyses will fail until one is")
    except ValueError as error:
        # A runtime ML_RUNTIME forces that the card does not mark servable, or a file that is
        # not the one measured: said once, in words, at start; each analysis then fails.
        logger.error("the model cannot be served: %s", error)


# Words for staff, never an exception's class name; the worker's log keeps the details.
FAILED_UNEXPECTEDLY = services.FAILED_UNEXPECTEDLY
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
    # From settings, so the stale sweep keys on the same limit (and a test can shorten both).
    soft_time_limit=settings.ANALYSIS_SOFT_TIME_LIMIT_S,
    time_limit=settings.ANALYSIS_TIME_LIMIT_S,
    max_retries=DATABASE_BUSY_RETRIES,
)
def analyse_image(self, analysis_id: int) -> str:
    """Analyse this upload, together with up to ANALYSIS_BATCH_SIZE - 1 others waiting in the
    queue (diagnosis.services.batch); their own tasks then find them done. The outcome is this
    analysis's; each analysis of the batch is logged on its own line."""
    try:
        ran = services.analysis_run_batch(
            analysis_id=analysis_id, batch_size=settings.ANALYSIS_BATCH_SIZE
        )
    except SoftTimeLimitExceeded:
        # The whole batch shares the task's time: the rest goes back to the queue (each is
        # run again by its own task); this task's own analysis fails, as it always did.
        services.analysis_release_batch(analysis_id=analysis_id)
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
        services.analysis_release_batch(analysis_id=analysis_id)
        services.analysis_fail(
            analysis_id=analysis_id,
            reason=DATABASE_BUSY if database_busy(exc) else FAILED_UNEXPECTEDLY,
        )
        return "failed"
    if ran:
        metrics.ANALYSIS_BATCH_SIZE.observe(len(ran))
    for analysis in ran:
        _observe(analysis)
        _log_finished(analysis, lead=analysis_id, size=len(ran))
    for analysis in ran:
        _run_shadow(analysis.pk)
    return ran[0].status if ran else "skipped"


def _log_finished(analysis, *, lead: int, size: int) -> None:
    """One line per analysis the batch finished: with several in one task, the task's own
    line names only its lead (melanoma_portal.task_signals), so this one says which ran."""
    logger.info(
        "analysis %s %s (in a batch of %d led by %s)",
        analysis.pk,
        analysis.status,
        size,
        lead,
        extra={
            "analysis_id": analysis.pk,
            "analysis_outcome": analysis.status,
            "batch_lead": lead,
            "batch_size": size,
        },
    )


def _observe(analysis) -> None:
    """A finished analysis's inference time and queue wait, for this worker host's metrics
    (its outcome is counted for every task by melanoma_portal.task_signals)."""
    timings = analysis.timings_ms or {}
    if "inference" in timings:
        metrics.INFERENCE.labels(model_version=analysis.model_version).observe(
            timings["inference"] / 1000
        )
    if "queue_wait" in timings:
        metrics.QUEUE_WAIT.observe(timings["queue_wait"] / 1000)
    if analysis.status == AnalysisStatus.NOT_ANALYSED:
        metrics.GATE_REJECTIONS.labels(reason=analysis.gate_reason).inc()


def _run_shadow(analysis_id: int) -> None:
    """The shadow version's look at the same image, once the served result is stored; its
    failure (or the task's time running out) never touches the served result."""
    try:
        services.shadow_run(analysis_id=analysis_id)
    except Exception:
        logger.exception("shadow run of analysis %s failed", analysis_id)


@shared_task(soft_time_limit=60, time_limit=90)
def requeue_stale_analyses() -> int:
    sent = services.analysis_requeue_stale()
    # The dashboard and /readyz read this to tell that beat (and a worker) are alive.
    services.heartbeat_record(name=SWEEP)
    return sent


@shared_task(soft_time_limit=600, time_limit=900)
def purge_expired_originals() -> int:
    """Delete original images past their clinic's retention period."""
    return services.images_purge_expired()


# Not acks_late: an evaluation runs longer than the broker's visibility timeout, and a second
# delivery would measure everything twice. A lost one is simply queued again from the admin.
@shared_task(acks_late=False, soft_time_limit=3300, time_limit=3600, max_retries=0)
def evaluate_model_version(model_version_id: int, actor_id: int) -> int:
    """The admin's Evaluate button: measure a version on the local cases."""
    from accounts.models import User
    from diagnosis.models import ModelVersion

    evaluation = services.model_version_evaluate(
        actor=User.objects.get(pk=actor_id),
        model_version=ModelVersion.objects.get(pk=model_version_id),
    )
    return evaluation.pk


@shared_task(soft_time_limit=600, time_limit=900)
def watch_drift() -> int:
    """Weekly: each clinic's week of results against the served version's validation."""
    return services.drift_reports_compute()
