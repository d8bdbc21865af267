"""The life of an analysis: queued, run by the worker, failed, retried."""

from __future__ import annotations

import io
import time

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record, audited_write
from accounts.models import User
from accounts.permissions import CLINICAL_ROLES, require_role, require_same_clinic
from diagnosis.models import Analysis, AnalysisStatus
from diagnosis.services.lesion import lesion_metadata

NO_CLASSIFIER = "No classifier installed: ask your administrator to install the trained model."


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


def analysis_requeue_stale(*, older_than_s: int = 900) -> int:
    """Queue again analyses that waited longer than any task can (a message lost with a
    broker restart, say). Returns how many were sent again; running twice is harmless."""
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_s)
    stale = list(
        Analysis.objects.filter(
            status__in=[AnalysisStatus.QUEUED, AnalysisStatus.RUNNING], queued_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    for pk in stale:
        with transaction.atomic():
            Analysis.objects.filter(pk=pk).update(queued_at=timezone.now())
            analysis = Analysis(pk=pk)
            _enqueue(analysis)
    return len(stale)


def _claim(analysis_id: int) -> Analysis | None:
    with transaction.atomic():
        analysis = (
            Analysis.objects.select_for_update().select_related("image").filter(pk=analysis_id)
        ).first()
        if analysis is None or analysis.status in (AnalysisStatus.DONE, AnalysisStatus.FAILED):
            return None  # deleted, or finished by an earlier delivery of the same task
        analysis.status = AnalysisStatus.RUNNING
        analysis.started_at = timezone.now()
        analysis.attempts += 1
        analysis.save(update_fields=["status", "started_at", "attempts"])
        return analysis


def analysis_run(*, analysis_id: int) -> Analysis | None:
    """Run the classifier on an analysis's image and store the result (the worker's job).

    Safe to run twice: a finished analysis is left alone, and a delivery that arrives again
    after a worker died mid-task simply runs it again.
    """
    from diagnosis.classifier import get_classifier
    from diagnosis.services.image import _open_image
    from ml.inference import ClassifierNotInstalled

    analysis = _claim(analysis_id)
    if analysis is None:
        return None
    started = time.perf_counter()
    try:
        classifier = get_classifier()
    except ClassifierNotInstalled:
        return analysis_fail(analysis_id=analysis_id, reason=NO_CLASSIFIER)
    load_ms = (time.perf_counter() - started) * 1000
    image = _open_image(analysis.image)
    if image is None:
        return analysis_fail(
            analysis_id=analysis_id,
            reason="The stored image could not be read; please upload it again.",
        )
    prediction = classifier.predict(image, lesion_metadata(analysis.image))
    heatmap_started = time.perf_counter()
    top_map = classifier.heatmap(image, prediction.top_class)
    # When melanoma is the top class both maps are the same Grad-CAM: compute it once.
    melanoma_map = top_map if prediction.top_class == "mel" else classifier.heatmap(image, "mel")
    heatmaps = {"heatmap_top": top_map, "heatmap_melanoma": melanoma_map}
    timings = dict(prediction.timings_ms)
    timings["heatmaps"] = round((time.perf_counter() - heatmap_started) * 1000, 1)
    timings["model_load"] = round(load_ms, 1)
    timings["queue_wait"] = round((analysis.started_at - analysis.queued_at).total_seconds() * 1000)

    with transaction.atomic():
        analysis = Analysis.objects.select_for_update().get(pk=analysis_id)
        if analysis.status == AnalysisStatus.DONE:
            return analysis
        for field, picture in heatmaps.items():
            buffer = io.BytesIO()
            picture.save(buffer, "PNG")
            getattr(analysis, field).save("heatmap.png", ContentFile(buffer.getvalue()), save=False)
        analysis.probabilities = prediction.probabilities
        analysis.top_class = prediction.top_class
        analysis.melanoma_probability = prediction.melanoma_probability
        analysis.risk_tier = prediction.risk_tier
        analysis.model_version = prediction.model_version
        analysis.timings_ms = timings
        analysis.metadata_used = list(prediction.metadata_used)
        analysis.status = AnalysisStatus.DONE
        analysis.failure_reason = ""
        analysis.finished_at = timezone.now()
        analysis.save()
    return analysis


def analysis_fail(*, analysis_id: int, reason: str) -> Analysis:
    with transaction.atomic():
        analysis = Analysis.objects.select_for_update().get(pk=analysis_id)
        if analysis.status != AnalysisStatus.DONE:
            analysis.status = AnalysisStatus.FAILED
            analysis.failure_reason = reason
            analysis.finished_at = timezone.now()
            analysis.save(update_fields=["status", "failure_reason", "finished_at"])
    return analysis
