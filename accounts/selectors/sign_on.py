"""Reads of clinics' hospital sign-in (accounts.ClinicSignOn)."""

from __future__ import annotations

import re

from django.db.models import QuerySet

from accounts.models import ClinicSignOn, User
from accounts.permissions import is_clinic_member

PROVIDER_ID = re.compile(r"clinic-(\d{1,18})")


def sign_ons_enabled() -> QuerySet[ClinicSignOn]:
    """Every clinic's provider that is switched on (the log-in page's buttons, allauth's apps)."""
    return (
        ClinicSignOn.objects.filter(enabled=True).select_related("clinic").order_by("display_name")
    )


def sign_on_for_provider(provider_id: str) -> ClinicSignOn | None:
    """The enabled sign-on that allauth's provider id (`clinic-<clinic id>`) names."""
    match = PROVIDER_ID.fullmatch(provider_id or "")
    if match is None:
        return None
    return sign_ons_enabled().filter(clinic_id=int(match[1])).first()


def clinic_sign_on_get(*, user: User) -> ClinicSignOn | None:
    """The user's clinic's sign-on configuration, switched on or not."""
    if not is_clinic_member(user):
        return None
    return ClinicSignOn.objects.filter(clinic_id=user.clinic_id).first()


def local_passwords_disabled_for(user: User) -> bool:
    """Whether the user's clinic signs in only through its provider (superusers and accounts
    outside a clinic keep their password)."""
    if not user.clinic_id:
        return False
    return ClinicSignOn.objects.filter(
        clinic_id=user.clinic_id, enabled=True, local_passwords_disabled=True
    ).exists()
