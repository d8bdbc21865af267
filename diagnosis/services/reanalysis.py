"""Re-analysis of past cases with the version served now, after a promotion: a new analysis of
the same image, queued for the worker; the earlier result stays as it was, pinned to the
version that made it, and the patient's page lists both."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q

from accounts.audit import audit_record, audited_write
from accounts.models import User
from diagnosis.models import Analysis, AnalysisStatus, ModelStatus, ModelVersion
from diagnosis.selectors.model_version import version_with_status
from diagnosis.services.batch import analyses_claim, analyses_run

REASON_NEEDED = "Say why these cases are analysed again: the reason is kept on the audit trail."


def _enqueue(analysis: Analysis) -> None:
    from diagnosis.tasks import analyse_image

    analyse_image.delay_on_commit(analysis.pk)


@audited_write("analysis.reanalyse")
def analyses_reanalyse(
    *, actor: User, analysis_ids: list[int], reason: str, request=None, enqueue: bool = True
) -> tuple[list[Analysis], dict[str, int]]:
    """Queue a new analysis of each named analysis's image, to be made by the active version.
    Superuser, with a reason. Returns the new analyses and, by why, how many were left alone:
    an image whose original is no longer kept, one that has a result (or a queued analysis)
    of the active version already, an id that names no analysis.

    With `enqueue=False` no task is sent: the caller runs them itself, in batches (the bulk
    re-analysis command); any it does not finish stay queued, and the stale sweep sends them
    to the workers (REQUEUE_QUEUED_AFTER_S).

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

    # Images with a result (or a queued analysis) of the active version already, or one
    # waiting: read once for all, not twice per image.
    pending = (AnalysisStatus.QUEUED, AnalysisStatus.RUNNING)
    covered_images = set(
        Analysis.objects.filter(image_id__in={a.image_id for a in sources.values()})
        .filter(
            (Q(model_version=active.version) & ~Q(status=AnalysisStatus.FAILED))
            | Q(status__in=pending)
        )
        .values_list("image_id", flat=True)
    )
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
            if image.pk in covered_images:
                skip(f"analysed by {active.version} already, or waiting")
                continue
            analysis = Analysis.objects.create(image=image, clinic_id=source.clinic_id)
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
            if enqueue:
                _enqueue(analysis)
            created.append(analysis)
    return created, skipped


def reanalysis_version(name: str) -> ModelVersion:
    """The version a bulk re-analysis names, refused in plain words unless it is the one the
    portal serves now and its files are installed: a re-analysis makes the results staff read,
    and only the active version is validated for that (a candidate runs in shadow instead)."""
    version = ModelVersion.objects.filter(version=name).first()
    if version is None:
        known = ", ".join(ModelVersion.objects.values_list("version", flat=True)) or "none"
        raise ValidationError(f"No model version {name!r} in the registry (registered: {known}).")
    from ml.served import ClassifierNotInstalled, read_card

    try:
        read_card(Path(settings.ML_MODELS_ROOT) / name)
    except ClassifierNotInstalled as missing:
        raise ValidationError(
            f"{name} is in the registry but not installed on this machine ({missing}); "
            "install its files (manage.py model_import) and try again."
        ) from None
    if version.status != ModelStatus.ACTIVE:
        active = version_with_status(ModelStatus.ACTIVE)
        raise ValidationError(
            f"{name} is {version.get_status_display().lower()}, not the version the portal "
            f"serves ({active.version if active else 'none is active'}): re-analysis makes "
            "results with the served version; promote it first (manage.py model_promote)."
        )
    return version


@dataclass
class ReanalysisSummary:
    """What a bulk run did: each new analysis counted once."""

    done: int = 0
    refused: int = 0  # by the image gate: not dermoscopy, blurred, too dark...
    failed: int = 0
    taken_by_worker: int = 0  # a worker's batch claimed it first; it finishes there
    model_versions: set[str] = field(default_factory=set)


def reanalysis_run(
    *,
    analysis_ids: list[int],
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
) -> ReanalysisSummary:
    """Run queued new analyses in this process, `batch_size` at a time, through the worker's
    own batch path (diagnosis.services.batch): one call into the network per batch, each
    result stored on its own. `on_batch(n)` is called after each batch (a progress bar).

    One a worker claimed first is left to it. Should this process stop, the claimed ones are
    sent again by the stale sweep, the unclaimed ones by the sweep of queued analyses."""
    if batch_size < 1:
        raise ValidationError(f"The batch size must be 1 or more, not {batch_size}.")
    summary = ReanalysisSummary()
    for start in range(0, len(analysis_ids), batch_size):
        chunk = analysis_ids[start : start + batch_size]
        claimed = analyses_claim(analysis_ids=chunk)
        summary.taken_by_worker += len(chunk) - len(claimed)
        for analysis in analyses_run(claimed):
            if analysis.status == AnalysisStatus.DONE:
                summary.done += 1
                summary.model_versions.add(analysis.model_version)
            elif analysis.status == AnalysisStatus.NOT_ANALYSED:
                summary.refused += 1
            else:
                summary.failed += 1
        if on_batch is not None:
            on_batch(len(chunk))
    return summary
