"""Is celery beat alive? Read from the stale sweep's heartbeat (diagnosis.models.housekeeping)."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.utils import timezone

from diagnosis.models import Heartbeat
from diagnosis.models.housekeeping import SWEEP

# Missed runs before the sweep counts as late: one late run is a busy worker, three is not.
MISSED_RUNS = 3


def sweep_late(*, now: datetime.datetime | None = None) -> str:
    """A sentence for the dashboard and /readyz when the stale sweep has not run for three of its
    intervals (or ever); "" when it is on time."""
    now = now or timezone.now()
    last = Heartbeat.objects.filter(name=SWEEP).values_list("at", flat=True).first()
    allowed = datetime.timedelta(seconds=MISSED_RUNS * settings.REQUEUE_STALE_EVERY_S + 60)
    if last is not None and now - last <= allowed:
        return ""
    since = (
        "has never run" if last is None else f"last ran {timezone.localtime(last):%Y-%m-%d %H:%M}"
    )
    return (
        f"The background scheduler (celery beat) {since}: analyses interrupted by a worker "
        "crash are not re-queued and expired images are not purged. Ask your administrator to "
        "start bin/beat and a worker."
    )
