"""Waiting for an analysis to change: what the status endpoints do with `?wait=` (long polling).

The worker stores a result about 0.25 s after it starts, but a page that asked every 2 s showed
it some 1.5 s later. A status request that waits, looking at the analysis's row every
STATUS_WAIT_EVERY_S (0.1 s), answers within that of the result being stored, and a client that
asks again at once costs one request per change, not one every few seconds. It reads the
database, the one thing every installation has (SQLite included, no Redis needed): one row by
primary key, a fraction of a millisecond.

A waiting request holds a web thread. A process lets at most STATUS_WAIT_SLOTS requests wait at
once, so the rest of the portal always has threads; past that the answer comes at once and says
so (`held` is 0), and the client asks again after a pause.
"""

from __future__ import annotations

import threading
import time
from functools import cache

from django.conf import settings

from diagnosis.models import Analysis


@cache
def _slots(count: int) -> threading.BoundedSemaphore | None:
    return threading.BoundedSemaphore(count) if count > 0 else None


def wait_seconds(raw: str | None) -> float:
    """The `?wait=` a client asked for, in seconds, within 0 and STATUS_WAIT_MAX_S; 0 when
    absent. Raises ValueError with a message in words for anything but a number."""
    if raw in (None, ""):
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(
            f"wait must be a number of seconds (0 to {settings.STATUS_WAIT_MAX_S:g}), not {raw!r}."
        ) from None
    if seconds != seconds:  # NaN
        raise ValueError("wait must be a number of seconds.")
    return min(max(seconds, 0.0), settings.STATUS_WAIT_MAX_S)


def analysis_wait(*, analysis: Analysis, seconds: float) -> float:
    """Wait up to `seconds` for a pending analysis's status to change; refresh `analysis` in
    place when it does. Returns the seconds this request was allowed to wait: 0 when it
    answered at once (nothing to wait for, no wait asked, or every waiting slot taken)."""
    if seconds <= 0 or not analysis.is_pending:
        return 0.0
    slots = _slots(settings.STATUS_WAIT_SLOTS)
    if slots is None or not slots.acquire(blocking=False):
        return 0.0
    try:
        deadline = time.monotonic() + seconds
        rows = Analysis.objects.filter(pk=analysis.pk).values_list("status", flat=True)
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(settings.STATUS_WAIT_EVERY_S, left))
            status = rows.first()
            if status != analysis.status:
                if status is not None:  # None: deleted meanwhile; the next request says 404
                    analysis.refresh_from_db()
                break
        return seconds
    finally:
        slots.release()
