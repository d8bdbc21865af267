"""Retention of original images: nothing is kept longer than the clinic said it needs.

An original dermoscopic image older than its clinic's `image_retention_days` is deleted from
storage; the analysis result, its heatmaps, the review, the audit trail and (if the clinic keeps
them) the small thumbnail stay, and `original_deleted_at` records when the original went.
"""

from __future__ import annotations

import datetime
import logging

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Clinic
from diagnosis.models import DermoscopicImage

logger = logging.getLogger(__name__)


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
