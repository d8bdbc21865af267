"""The life of an analysis: queued, gated, run by the worker, failed, retried, overridden."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.audit import audit_record, audited_write
from accounts.models import Role, User
from accounts.permissions import CLINICAL_ROLES, require_role, require_same_clinic
from diagnosis.models import Analysis, AnalysisStatus
from diagnosis.services.batch import FINISHED, analyses_run, analysis_claim_batch

INTERRUPTED = (
    "The analysis was interrupted {} times (its worker stopped or it ran out of time); "
    "press Retry to queue it again."
)
OVERRIDE_NEEDS_REASON = "Say why this image should be analysed although the gate refused it."


class OverrideRefused(ValidationError):
    """The analysis is not one the gate refused (or a doctor has overridden it already):
    nothing to override. The REST API answers 409."""

    api_status_code = 409


def _enqueue(analysis: Analysis) -> None:
    from diagnosis.tasks import analyse_image

    # Sent only once the row is committed: a worker never looks for an analysis not yet there.
    # A broker that cannot take it (an outage) must not fail the upload: the analysis stays
    # queued in the database, the error is logged, and the beat sweep sends it again
    # (analysis_requeue_stale) once the broker is back.
    pk = analysis.pk
    transaction.on_commit(lambda: analyse_image.delay(pk), robust=True)


@audited_write("analysis.retry")
def analysis_retry(*, actor: User, analysis: Analysis, request=None) -> Analysis:
    """Queue a failed analysis again; anything else is left as it is. Audited either way: the
    request named (and the answer reveals) this patient's analysis."""
    require_role(actor, *CLINICAL_ROLES)
    require_same_clinic(actor, analysis.image.lesion.patient.clinic_id)
    with transaction.atomic():
        analysis = Analysis.objects.select_for_update().get(pk=analysis.pk)
        requeued = analysis.status == AnalysisStatus.FAILED
        audit_record(
            action="analysis.retry", user=actor, request=request, obj=analysis, requeued=requeued
        )
        if not requeued:
            return analysis
        analysis.status = AnalysisStatus.QUEUED
        analysis.failure_reason = ""
        analysis.queued_at = timezone.now()
        analysis.save(update_fields=["status", "failure_reason", "queued_at"])
        _enqueue(analysis)
    return analysis


def analysis_requeue_stale(*, older_than_s: int | None = None) -> int:
    """Send again the analyses whose message is lost; beat runs this every minute.

    - `running` past the task's hard time limit: no worker is on it any more (the pool kills a
      task at that limit), so its worker died with it. On the filesystem broker the message
      went when the worker fetched it; on Redis it would come back only after the visibility
      timeout. Re-sent at once, unless it was already interrupted ANALYSIS_MAX_ATTEMPTS times:
      then it fails with a message, so an image that kills the worker cannot loop forever.
    - `queued` for longer than `older_than_s` (REQUEUE_QUEUED_AFTER_S): the broker may have
      lost the message (a restart without persistence).

    Returns how many were sent again or failed; running twice is harmless (a finished analysis
    is never claimed again, see diagnosis.services.batch).
    """
    now = timezone.now()
    queued_cutoff = now - timezone.timedelta(
        seconds=settings.REQUEUE_QUEUED_AFTER_S if older_than_s is None else older_than_s
    )
    running_cutoff = now - timezone.timedelta(seconds=settings.ANALYSIS_TIME_LIMIT_S)
    stale = list(
        Analysis.objects.filter(
            Q(status=AnalysisStatus.QUEUED, queued_at__lt=queued_cutoff)
            | Q(status=AnalysisStatus.RUNNING, started_at__lt=running_cutoff)
        ).values_list("pk", flat=True)
    )
    for pk in stale:
        with transaction.atomic():
            analysis = Analysis.objects.select_for_update().filter(pk=pk).first()
            if analysis is None or analysis.status in FINISHED:
                continue
            if (
                analysis.status == AnalysisStatus.RUNNING
                and analysis.attempts >= settings.ANALYSIS_MAX_ATTEMPTS
            ):
                analysis_fail(analysis_id=pk, reason=INTERRUPTED.format(analysis.attempts))
                continue
            analysis.status = AnalysisStatus.QUEUED
            analysis.queued_at = timezone.now()
            analysis.batch_lead = None
            analysis.save(update_fields=["status", "queued_at", "batch_lead"])
            _enqueue(analysis)
    return len(stale)


def analysis_run(*, analysis_id: int, batch_size: int = 1) -> Analysis | None:
    """Check an analysis's image with the served model's image gate, then run the classifier
    on it and store the result (the worker's job); with `batch_size` > 1, together with up to
    that many minus one other queued analyses (diagnosis.services.batch). Returns this
    analysis as stored, or None when this delivery had nothing to do.

    An image the gate refuses ends `not_analysed`, with the gate's reason and measures and no
    prediction of any kind. The gate is skipped for a model shipped without one (v1) and for
    an analysis a doctor has overridden (its result is then marked outside validated use).

    Safe to run twice: a finished analysis is left alone, and a delivery that arrives again
    after a worker died mid-task simply runs it again.
    """
    ran = analysis_run_batch(analysis_id=analysis_id, batch_size=batch_size)
    return ran[0] if ran else None


def analysis_run_batch(*, analysis_id: int, batch_size: int) -> list[Analysis]:
    """`analysis_run` for the worker's task: every analysis the batch ran, its own first
    ([] when this delivery had nothing to do)."""
    claimed = analysis_claim_batch(analysis_id=analysis_id, batch_size=max(1, batch_size))
    return analyses_run(claimed)


@audited_write("analysis.override_gate")
def analysis_override_gate(
    *, actor: User, analysis: Analysis, reason: str, request=None
) -> Analysis:
    """A doctor's decision to have an image the gate refused analysed anyway, with the reason
    in their words. The analysis is queued again (sent once the override is committed) and the
    worker predicts without the gate; the result is marked as outside validated use, with this
    reason and the doctor's name, wherever it is shown.

    Only a doctor may override. A second submission (a double click, a retried request, a
    colleague at the same moment) finds the analysis no longer refused and raises
    OverrideRefused: it is neither queued twice nor is the first reason overwritten.
    """
    require_role(actor, Role.DOCTOR)
    require_same_clinic(actor, analysis.image.lesion.patient.clinic_id)
    reason = (reason or "").strip()
    with transaction.atomic():
        analysis = Analysis.objects.select_for_update().get(pk=analysis.pk)
        if analysis.is_overridden:
            raise OverrideRefused(
                f"{analysis.overridden_by_name or 'A doctor'} already overrode the image gate "
                f"for this analysis on {timezone.localtime(analysis.overridden_at):%d %b %Y, %H:%M}"
                f"; it is {analysis.get_status_display().lower()}."
            )
        if analysis.status != AnalysisStatus.NOT_ANALYSED:
            raise OverrideRefused(
                f"The analysis is {analysis.get_status_display().lower()}: only an analysis "
                "whose image the gate refused can be overridden."
            )
        if not reason:
            raise ValidationError({"reason": OVERRIDE_NEEDS_REASON})
        now = timezone.now()
        analysis.status = AnalysisStatus.QUEUED
        analysis.overridden_at = now
        analysis.overridden_by = actor
        analysis.overridden_by_name = actor.get_full_name()
        analysis.override_reason = reason
        analysis.queued_at = now
        analysis.started_at = None
        analysis.finished_at = None
        analysis.save(
            update_fields=[
                "status",
                "overridden_at",
                "overridden_by",
                "overridden_by_name",
                "override_reason",
                "queued_at",
                "started_at",
                "finished_at",
            ]
        )
        audit_record(
            action="analysis.override_gate",
            user=actor,
            request=request,
            obj=analysis,
            # The reason itself stays on the analysis (free text may name the patient; the
            # audit trail outlives an erasure).
            gate_reason=analysis.gate_reason,
        )
        _enqueue(analysis)
    return analysis


def analysis_fail(*, analysis_id: int, reason: str) -> Analysis:
    with transaction.atomic():
        analysis = Analysis.objects.select_for_update().get(pk=analysis_id)
        if analysis.status not in (AnalysisStatus.DONE, AnalysisStatus.NOT_ANALYSED):
            analysis.status = AnalysisStatus.FAILED
            analysis.failure_reason = reason
            analysis.finished_at = timezone.now()
            analysis.save(update_fields=["status", "failure_reason", "finished_at"])
    return analysis
