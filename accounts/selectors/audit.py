"""Reads of the audit trail, for the history panel an analysis page shows to clinic admins."""

from __future__ import annotations

from django.db import models
from django.db.models import Q, QuerySet

from accounts.models import AuditEvent, Role, User

HISTORY_LIMIT = 200


def history_for(obj: models.Model, *, user: User | None = None) -> QuerySet[AuditEvent]:
    """Every event about `obj` and about the records it is made of, oldest first: for an
    analysis, its image's upload and views, its reviews, report downloads.

    With `user`, only a clinic admin of the object's clinic sees anything (the panel is for
    admins); without it the caller has already checked. Events of other clinics never appear.
    """
    if user is not None and not (user.is_authenticated and user.role == Role.ADMIN):
        return AuditEvent.objects.none()
    condition = Q(object_type=obj._meta.model_name, object_id=str(obj.pk))
    for related_type, related_id in _parts(obj):
        condition |= Q(object_type=related_type, object_id=str(related_id))
    events = AuditEvent.objects.filter(condition)
    if user is not None:
        events = events.filter(clinic_id=user.clinic_id)
    return events.order_by("at", "id")[:HISTORY_LIMIT]


def _parts(obj: models.Model) -> list[tuple[str, int]]:
    """The records an object's history is made of (for an analysis: its image and its
    reviews), as the object lists them in `audit_parts()`; this module names no other app."""
    audit_parts = getattr(obj, "audit_parts", None)
    return list(audit_parts()) if audit_parts is not None else []
