"""Recording who touched which patient data.

Writes are audited by the service that makes them, inside the write's transaction, whoever
calls it (a page, the API, an admin action, a management command); views and API endpoints
record only reads. A service that writes marks itself with `@audited_write("patient.create")`,
which registers it: tests/security/test_audited_writes.py calls every registered service and
checks it leaves exactly one audit event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import models

from accounts.models import AuditEvent, User
from melanoma_portal.client_address import client_ip

F = TypeVar("F", bound=Callable[..., Any])

# "module.function" -> the audit actions the service may record (one per call).
AUDITED_WRITES: dict[str, tuple[str, ...]] = {}


def audited_write(*actions: str) -> Callable[[F], F]:
    """Register a service as a write that records one audit event with one of `actions`."""

    def register(service: F) -> F:
        AUDITED_WRITES[f"{service.__module__}.{service.__qualname__}"] = actions
        service.audit_actions = actions  # type: ignore[attr-defined]
        return service

    return register


def _client(request) -> tuple[str | None, str]:
    if request is None:
        return None, ""
    # Behind the production proxy REMOTE_ADDR is the proxy; only the X-Forwarded-For entries
    # the configured proxies appended are believed (the same address lock-out and throttles use).
    return client_ip(request), request.META.get("HTTP_USER_AGENT", "")[:400]


def _patient_id(obj: models.Model | None) -> int | None:
    """The patient an object belongs to, as the object itself says (`audit_patient_id`): each
    app's models know their own way to their patient, this module knows none of them."""
    if obj is None:
        return None
    return getattr(obj, "audit_patient_id", None)


def audit_record(
    *,
    action: str,
    user: User | None = None,
    request=None,
    obj: models.Model | None = None,
    patient_id: int | None = None,
    **detail: Any,
) -> AuditEvent:
    """Append one audit event. `action` is a short verb phrase: 'patient.view',
    'image.download', 'analysis.view', 'review.sign', 'report.download', 'login.failed'..."""
    if user is None and request is not None and request.user.is_authenticated:
        user = request.user
    ip, agent = _client(request)
    return AuditEvent.objects.create(
        user=user if user is not None and user.pk else None,
        user_email=getattr(user, "email", "") or detail.pop("email", ""),
        role=getattr(user, "role", "") or "",
        clinic_id=getattr(user, "clinic_id", None),
        action=action,
        object_type=obj._meta.model_name if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        patient_id=patient_id if patient_id is not None else _patient_id(obj),
        ip_address=ip,
        user_agent=agent,
        detail=detail,
    )
