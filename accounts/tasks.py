"""Periodic housekeeping tasks owned by security and privacy (run by celery beat)."""

from __future__ import annotations

from celery import shared_task


@shared_task(soft_time_limit=600, time_limit=900)
def purge_expired_originals() -> int:
    """Delete original images past their clinic's retention period (diagnosis.retention)."""
    from diagnosis.retention import images_purge_expired

    return images_purge_expired()
