"""When each periodic task last ran.

celery beat runs in its own process (bin/beat); if it stops, nothing fails loudly: analyses a
crash left `running` are simply never re-queued, and expired originals never purged. Each
periodic task records its run here, and the dashboard and /readyz say when the stale sweep is
late (diagnosis.selectors.housekeeping).
"""

from __future__ import annotations

from django.db import models

# The stale sweep (diagnosis.tasks.requeue_stale_analyses): beat sends it every
# REQUEUE_STALE_EVERY_S, and once when beat starts.
SWEEP = "requeue_stale_analyses"


class Heartbeat(models.Model):
    name = models.CharField(max_length=100, unique=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"
