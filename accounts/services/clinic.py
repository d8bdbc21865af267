"""A clinic admin's writes to the clinic's own settings: its referral policy."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.audit import audit_record, audited_write
from accounts.models import Clinic, Role, User
from accounts.permissions import require_role

# A referral due more than a year out is no deadline; the form says the same.
MAX_REFERRAL_DAYS = 365


@audited_write("clinic.referral_policy")
def clinic_set_referral_policy(
    *, actor: User, referral_days_urgent: int, referral_days_soon: int, request=None
) -> Clinic:
    """Set how many days the clinic's urgent and soon referrals have before they are overdue.
    Referrals already open keep the due date they were given."""
    require_role(actor, Role.ADMIN)
    errors: dict[str, str] = {}
    if not 1 <= referral_days_urgent <= MAX_REFERRAL_DAYS:
        errors["referral_days_urgent"] = f"Give a number of days from 1 to {MAX_REFERRAL_DAYS}."
    if not 1 <= referral_days_soon <= MAX_REFERRAL_DAYS:
        errors["referral_days_soon"] = f"Give a number of days from 1 to {MAX_REFERRAL_DAYS}."
    elif not errors and referral_days_soon < referral_days_urgent:
        errors["referral_days_soon"] = "A soon referral cannot be due before an urgent one."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        clinic = Clinic.objects.select_for_update().get(pk=actor.clinic_id)
        before = {"urgent": clinic.referral_days_urgent, "soon": clinic.referral_days_soon}
        clinic.referral_days_urgent = referral_days_urgent
        clinic.referral_days_soon = referral_days_soon
        clinic.save(update_fields=["referral_days_urgent", "referral_days_soon"])
        audit_record(
            action="clinic.referral_policy",
            user=actor,
            request=request,
            obj=clinic,
            before=before,
            after={"urgent": referral_days_urgent, "soon": referral_days_soon},
        )
    return clinic
