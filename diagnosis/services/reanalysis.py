"""Re-analysis of past cases with the version served now, after a promotion: a new analysis of
the same image, queued for the worker; the earlier result stays as it was, pinned to the
version that made it, and the patient's page lists both."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts.audit import audit_record, audited_write
from accounts.models import User
from diagnosis.models import Analysis, AnalysisStatus, ModelStatus
from diagnosis.selectors.model_version import version_with_status

REASON_NEEDED = "Say why these cases are analysed again: the reason is kept on the audit trail."


def _enqueue(analysis: Analysis) -> None:
    from diagnosis.tasks import analyse_image

    analyse_image.delay_on_commit(analysis.pk)


@audited_write("analysis.reanalyse")
def analyses_reanalyse(
    *, actor: User, analysis_ids: list[int], reason: str, request=None
) -> tuple[list[Analysis], dict[str, int]]:
    """Queue a new analysis of each named analysis's image, to be made by the active version.
    Superuser, with a reason. Returns the new analyses and, by why, how many were left alone:
    an image whose original is no longer kept, one that has a result (or a queued analysis)
    of the active version already, an id that names no analysis.

    One audit event per new analysis, each naming its patient; the earlier analyses are not
    touched."""
    if not (actor.is_authenticated and actor.is_active and actor.is_superuser):
        raise PermissionDenied("Only a superuser can re-analyse past cases.")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": REASON_NEEDED})
    active = version_with_status(ModelStatus.ACTIVE)
    if active is None:
        raise ValidationError("No version is active in the registry: nothing to re-analyse with.")
    sources = {
        a.pk: a
        for a in Analysis.objects.filter(pk__in=analysis_ids).select_related("image__lesion")
    }
    created: list[Analysis] = []
    skipped: dict[str, int] = {}

    def skip(why: str) -> None:
        skipped[why] = skipped.get(why, 0) + 1

    seen_images: set[int] = set()
    with transaction.atomic():
        for pk in analysis_ids:
            source = sources.get(pk)
            if source is None:
                skip("no such analysis")
                continue
            image = source.image
            if image.pk in seen_images:
                continue
            seen_images.add(image.pk)
            if not image.file or image.original_deleted_at is not None:
                skip("image no longer kept")
                continue
            pending = (AnalysisStatus.QUEUED, AnalysisStatus.RUNNING)
            has_active = Analysis.objects.filter(image=image).filter(
                model_version=active.version
            ).exclude(status=AnalysisStatus.FAILED).exists() or (
                Analysis.objects.filter(image=image, status__in=pending).exists()
            )
            if has_active:
                skip(f"analysed by {active.version} already, or waiting")
                continue
            analysis = Analysis.objects.create(image=image)
            audit_record(
                action="analysis.reanalyse",
                user=actor,
                request=request,
                obj=analysis,
                earlier_analysis=source.pk,
                earlier_version=source.model_version,
                version=active.version,
                reason=reason,
            )
            _enqueue(analysis)
            created.append(analysis)
    return created, skipped
