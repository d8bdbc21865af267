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
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.audit import audit_record, audited_write
from accounts.models import Clinic, User
from accounts.permissions import CLINICAL_ROLES, require_role, require_same_clinic
from diagnosis import image_fingerprint
from diagnosis.image_validation import CleanImage, clean_image
from diagnosis.models import Analysis, DermoscopicImage, Lesion
from diagnosis.services.analysis import _enqueue

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DuplicateMatch:
    """A stored image of the clinic that shows the same picture as an upload."""

    image_id: int
    analysis_id: int | None
    lesion_id: int
    uploaded_at: datetime.datetime
    exact: bool  # the same file (sha256), not only the same picture
    where: str  # "lesion" (this lesion), "patient" (another lesion of the patient), "other"

    @property
    def message(self) -> str:
        """What the person uploading is told, in plain words (no other patient is named)."""
        local = timezone.localtime(self.uploaded_at)
        day = f"{local.day} {local:%b %Y}"
        if self.where == "lesion":
            if self.exact:
                return f"This file was already uploaded for this lesion on {day}."
            return (
                f"This looks like the same picture as the one uploaded for this lesion on "
                f"{day} (saved again or resized)."
            )
        if self.where == "patient":
            return (
                f"The same picture is filed under another lesion of this patient (uploaded "
                f"{day}): check which lesion it shows."
            )
        return (
            f"The same picture is stored for another patient of this clinic (uploaded {day}): "
            "this image may be filed on the wrong patient. Check the patient before uploading."
        )


class DuplicateImage(ValidationError):
    """The upload shows a picture the clinic has already stored; nothing was stored. Upload
    again with `allow_duplicate` to store it anyway. The REST API answers 409."""

    api_status_code = 409

    def __init__(self, matches: list[DuplicateMatch]) -> None:
        self.matches = matches
        super().__init__([match.message for match in matches])

    def __str__(self) -> str:
        return " ".join(self.messages)


def image_duplicates(*, lesion: Lesion, clean: CleanImage) -> list[DuplicateMatch]:
    """The clinic's stored images that are the same file or, by the perceptual hash, the
    same picture as `clean`: this lesion's first, then the patient's other lesions', then
    other patients'. A match on another patient needs a closer hash
    (image_fingerprint.OTHER_PATIENT_MAX_BITS) than one on this patient."""
    patient = lesion.patient
    clinic_images = DermoscopicImage.objects.filter(lesion__patient__clinic_id=patient.clinic_id)
    exact = set(clinic_images.filter(sha256=clean.sha256).values_list("pk", flat=True))
    near: set[int] = set()
    if image_fingerprint.is_informative(clean.perceptual_hash):
        rows = list(
            clinic_images.exclude(perceptual_hash="").values_list(
                "pk", "perceptual_hash", "lesion__patient_id"
            )
        )
        bits = image_fingerprint.distances(
            clean.perceptual_hash, image_fingerprint.as_words([row[1] for row in rows])
        )
        for (pk, _, patient_id), distance in zip(rows, bits, strict=True):
            limit = (
                image_fingerprint.SAME_PATIENT_MAX_BITS
                if patient_id == patient.pk
                else image_fingerprint.OTHER_PATIENT_MAX_BITS
            )
            if distance <= limit:
                near.add(pk)
    found = (
        DermoscopicImage.objects.filter(pk__in=exact | near)
        .select_related("lesion")
        .prefetch_related("analyses")
        .order_by("uploaded_at", "pk")
    )
    matches = []
    for image in found:
        if image.lesion_id == lesion.pk:
            where = "lesion"
        elif image.lesion.patient_id == patient.pk:
            where = "patient"
        else:
            where = "other"
        analyses = sorted(image.analyses.all(), key=lambda a: a.queued_at)
        matches.append(
            DuplicateMatch(
                image_id=image.pk,
                analysis_id=analyses[0].pk if analyses else None,
                lesion_id=image.lesion_id,
                uploaded_at=image.uploaded_at,
                exact=image.pk in exact,
                where=where,
            )
        )
    order = {"lesion": 0, "patient": 1, "other": 2}
    return sorted(matches, key=lambda m: (order[m.where], m.uploaded_at))


@audited_write("image.upload")
def image_upload(
    *,
    actor: User,
    lesion: Lesion,
    upload,
    submission_token: uuid.UUID | None = None,
    allow_duplicate: bool = False,
    request=None,
) -> Analysis:
    """Validate and store one dermoscopic image and queue its analysis.

    Raises diagnosis.image_validation.ImageRejected for a file we do not accept, and
    DuplicateImage, storing nothing, when the clinic already holds the same file or the same
    picture re-encoded (on this lesion, another lesion of the patient, or another patient);
    `allow_duplicate` stores it anyway, and the audit event names the images it matched. A
    repeated submission (the same `submission_token`) returns the first one's analysis: a
    double click or a retried mobile request never analyses one photo twice, and is audited as
    a repeat.
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
    duplicates = image_duplicates(lesion=lesion, clean=clean)
    if duplicates and not allow_duplicate:
        raise DuplicateImage(duplicates)
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
            perceptual_hash=clean.perceptual_hash,
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
        analysis = Analysis.objects.create(image=image, clinic_id=lesion.patient.clinic_id)
        _enqueue(analysis)
        _audit_upload(
            analysis, actor, request, duplicate_of=[match.image_id for match in duplicates]
        )
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
    # Only the quota-th newest upload of the hour matters: one row, not the hour's timestamps
    # (fetched twice per upload, they were a tenth of the web tier's time in a burst).
    oldest_counted = recent.values_list("uploaded_at", flat=True)[quota - 1 : quota].first()
    if oldest_counted is None:
        return
    # A place frees up when the oldest of the last `quota` uploads leaves the hour.
    resumes = oldest_counted + QUOTA_WINDOW
    wait_s = max(int((resumes - now).total_seconds()) + 1, 1)
    minutes = -(-wait_s // 60)
    raise UploadQuotaExceeded(
        f"Your clinic has uploaded {quota} images in the past hour, the most allowed, so "
        f"that every clinic's analyses keep moving. Uploads resume at "
        f"{timezone.localtime(resumes):%H:%M} (in {minutes} minute{'s' if minutes != 1 else ''}); "
        "nothing was stored. Ask your administrator if your clinic needs a higher limit.",
        retry_after_s=wait_s,
    )


def _audit_upload(
    analysis: Analysis,
    actor: User,
    request,
    *,
    repeated: bool = False,
    duplicate_of: list[int] | None = None,
) -> Analysis:
    detail: dict = {"repeated_submission": True} if repeated else {}
    if duplicate_of:
        # Stored although it matched these images: someone chose "upload anyway".
        detail["duplicate_of"] = duplicate_of
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
