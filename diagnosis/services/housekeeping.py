"""The periodic tasks' heartbeat (diagnosis.models.housekeeping): not a record of anyone's
data, so not audited."""

from __future__ import annotations

from django.utils import timezone

from diagnosis.models import Heartbeat


def heartbeat_record(*, name: str) -> None:
    Heartbeat.objects.update_or_create(name=name, defaults={"at": timezone.now()})
