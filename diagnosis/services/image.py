"""Dermoscopic images: the one way to upload one (page, API, management command), reading a
stored one back for the worker, and the retention purge of originals past their clinic's
retention period.

An original older than its clinic's `image_retention_days` is deleted from storage; the
analysis result, its heatmaps, the review, the audit trail and (if the clinic keeps them)
the small thumbnail stay, and `original_deleted_at` records when the original went.
"""

from __future__ import annotations

import datetime
import io
import logging
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.audit import audit_record, audited_write
from accounts.models import Clinic, User
from accounts.permissions import CLINICAL_ROLES, require_role, require_same_clinic
from diagnosis.image_validation import clean_image
from diagnosis.models import Analysis, DermoscopicImage, Lesion
from diagnosis.services.analysis import _enqueue

logger = logging.getLogger(__name__)


@audited_write("image.upload")
def image_upload(
    *,
    actor: User,
    lesion: Lesion,
    upload,
    submission_token: uuid.UUID | None = None,
    request=None,
) -> Analysis:
    """Validate and store one dermoscopic image and queue its analysis.

    Raises diagnosis.image_validation.ImageRejected for a file we do not accept. A repeated
    submission (the same `submission_token`) returns the first one's analysis: a double click
    or a retried mobile request never analyses one photo twice, and is audited as a repeat.
    """
    require_role(actor, *CLINICAL_ROLES)
    require_same_clinic(actor, lesion.patient.clinic_id)
    if submission_token is not None:
        earlier = _earlier_submission(lesion, submission_token)
        if earlier is not None:
            return _audit_upload(earlier, actor, request, repeated=True)
    # Before the costly decoding, and again under the clinic's lock below: two uploads racing
    # for the last place cannot both take it.
    _check_upload_quota(lesion.patient.clinic_id)
    clean = clean_image(
        upload, max_bytes=settings.UPLOAD_MAX_BYTES, max_pixels=settings.UPLOAD_MAX_PIXELS
    )
    with transaction.atomic():
        Clinic.objects.select_for_update().filter(pk=lesion.patient.clinic_id).first()
        _check_upload_quota(lesion.patient.clinic_id)
        image = DermoscopicImage(
            lesion=lesion,
            content_type=clean.content_type,
            width=clean.width,
            height=clean.height,
            size_bytes=len(clean.content),
            sha256=clean.sha256,
            original_filename=(getattr(upload, "name", "") or "")[:255],
            submission_token=submission_token,
            uploaded_by=actor,
        )
        image.file.save(f"upload.{clean.extension}", ContentFile(clean.content), save=False)
        image.thumbnail.save("thumb.jpg", ContentFile(clean.thumbnail), save=False)
        try:
            with transaction.atomic():
                image.save()
        except Exception:
            image.file.delete(save=False)
            image.thumbnail.delete(save=False)
            earlier = _earlier_submission(lesion, submission_token)
            if earlier is not None:
                return _audit_upload(earlier, actor, request, repeated=True)
            raise
        analysis = Analysis.objects.create(image=image)
        _enqueue(analysis)
        _audit_upload(analysis, actor, request)
    return analysis


class UploadQuotaExceeded(Exception):
    """The clinic has used its uploads for the hour; the message says when they resume."""

    api_status_code = 429  # melanoma_portal.api_errors answers with it, and Retry-After

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


QUOTA_WINDOW = datetime.timedelta(hours=1)


def _check_upload_quota(clinic_id: int) -> None:
    """Refuse an upload once the clinic has made UPLOAD_QUOTA_PER_CLINIC_HOUR in the past hour:
    the workers are shared by every clinic, and each image costs seconds of their time."""
    quota = settings.UPLOAD_QUOTA_PER_CLINIC_HOUR
    now = timezone.now()
    recent = DermoscopicImage.objects.filter(
        lesion__patient__clinic_id=clinic_id, uploaded_at__gte=now - QUOTA_WINDOW
    ).order_by("-uploaded_at")
    times = list(recent.values_list("uploaded_at", flat=True)[:quota])
    if len(times) < quota:
        return
    # A place frees up when the oldest of the last `quota` uploads leaves the hour.
    resumes = times[-1] + QUOTA_WINDOW
    wait_s = max(int((resumes - now).total_seconds()) + 1, 1)
    minutes = -(-wait_s // 60)
    raise UploadQuotaExceeded(
        f"Your clinic has uploaded {quota} images in the past hour, the most allowed, so "
        f"that every clinic's analyses keep moving. Uploads resume at "
        f"{timezone.localtime(resumes):%H:%M} (in {minutes} minute{'s' if minutes != 1 else ''}); "
        "nothing was stored. Ask your administrator if your clinic needs a higher limit.",
        retry_after_s=wait_s,
    )


def _audit_upload(analysis: Analysis, actor: User, request, *, repeated: bool = False) -> Analysis:
    detail = {"repeated_submission": True} if repeated else {}
    audit_record(action="image.upload", user=actor, request=request, obj=analysis.image, **detail)
    return analysis


def _earlier_submission(lesion: Lesion, token: uuid.UUID | None) -> Analysis | None:
    if token is None:
        return None
    image = DermoscopicImage.objects.filter(submission_token=token).first()
    if image is None:
        return None
    if image.lesion_id != lesion.pk:
        raise ValidationError("This upload form was already used for another lesion.")
    return image.analyses.order_by("queued_at").first()


def _open_image(image: DermoscopicImage):
    """The stored image as the worker analyses it (see image_for_analysis); None if unreadable."""
    return image_for_analysis(image)


def image_for_analysis(image: DermoscopicImage):
    """A working copy of the stored original, RGB, of at most ANALYSIS_MAX_PIXELS pixels (a
    JPEG decoded at a reduced scale where it can be); the original stays as uploaded. None if
    the file cannot be read."""
    from PIL import Image

    from ml.imaging import working_copy

    try:
        with image.file.open("rb") as handle:
            picture = Image.open(io.BytesIO(handle.read()))
            return working_copy(picture, settings.ANALYSIS_MAX_PIXELS)
    except (OSError, ValueError):
        logger.exception("image %s of analysis could not be read", image.pk)
        return None


def images_past_retention(*, now: datetime.datetime | None = None) -> QuerySet[DermoscopicImage]:
    """Images whose original is still stored and older than their clinic's retention period.

    One cutoff per clinic (there are few clinics, and date arithmetic on a column differs
    between PostgreSQL and SQLite)."""
    now = now or timezone.now()
    expired = Q(pk__in=[])
    for clinic_id, days in Clinic.objects.values_list("pk", "image_retention_days"):
        cutoff = now - datetime.timedelta(days=days)
        expired |= Q(lesion__patient__clinic_id=clinic_id, uploaded_at__lt=cutoff)
    return DermoscopicImage.objects.filter(expired, original_deleted_at__isnull=True)


def images_purge_expired(*, now: datetime.datetime | None = None, batch_size: int = 500) -> int:
    """Delete expired originals; returns how many. Safe to run twice or concurrently: each image
    is claimed under a row lock and skipped once `original_deleted_at` is set."""
    now = now or timezone.now()
    purged = 0
    candidates = list(images_past_retention(now=now).values_list("pk", flat=True)[:batch_size])
    for pk in candidates:
        with transaction.atomic():
            image = (
                DermoscopicImage.objects.select_for_update(of=("self",))
                .select_related("lesion__patient__clinic")
                .filter(pk=pk, original_deleted_at__isnull=True)
                .first()
            )
            if image is None:
                continue  # purged by a concurrent run
            clinic = image.lesion.patient.clinic
            names = [image.file.name] if image.file else []
            image.file = ""
            if not clinic.keep_thumbnails and image.thumbnail:
                names.append(image.thumbnail.name)
                image.thumbnail = ""
            image.original_deleted_at = now
            image.save(update_fields=["file", "thumbnail", "original_deleted_at"])
            audit_record(
                action="image.retention_delete",
                obj=image,
                retention_days=clinic.image_retention_days,
                thumbnail_kept=bool(image.thumbnail),
            )
            storage = image.file.storage
            # The file goes only once the row recording its deletion is committed: a rollback
            # leaves the original in place and still named by its row.
            transaction.on_commit(lambda names=names, storage=storage: _delete(storage, names))
        purged += 1
    if purged:
        logger.info("retention: deleted %d original image(s)", purged)
    return purged


def _delete(storage, names: list[str]) -> None:
    for name in names:
        try:
            storage.delete(name)
        except OSError:
            logger.exception("retention: could not delete %s", name)
