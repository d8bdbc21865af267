"""Writes of referrals: opening one when a doctor signs a referring decision, and closing it.

A referral opens inside the transaction that signs the review (diagnosis.services.review calls
`referral_open`), so a signed "refer" decision and its referral exist together or not at all.
Only doctors open and close referrals, as only doctors sign reviews and record histology; staff
and clinic admins follow them on the referrals page.
"""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record, audited_write
from accounts.models import Clinic, Role, User
from accounts.permissions import require_role, require_same_clinic
from diagnosis.models import (
    REFERRING_DECISIONS,
    Analysis,
    Histopathology,
    Referral,
    ReferralStatus,
    ReferralUrgency,
    Review,
)

DESTINATION_MISSING = "Say where the patient is referred, e.g. 'Plastic surgery, St Mary's'."


class ReferralAlreadyClosed(Exception):
    """The referral was closed already (a second click, or a colleague was quicker); nothing
    was changed. The message says by whom and when."""

    api_status_code = 409  # melanoma_portal.api_errors answers it as a conflict


def referral_due_on(*, clinic: Clinic, urgency: str, opened_on: datetime.date) -> datetime.date:
    """The date a referral of `urgency` opened on `opened_on` is due by, by the clinic's policy
    (the table in diagnosis.models.referral)."""
    days = {
        ReferralUrgency.URGENT: clinic.referral_days_urgent,
        ReferralUrgency.SOON: clinic.referral_days_soon,
    }[urgency]
    return opened_on + datetime.timedelta(days=days)


@audited_write("referral.create")
def referral_open(*, actor: User, review: Review, request=None) -> Referral | None:
    """Open the referral a signed review's decision asks for; None when it does not refer.

    Safe to call twice: when the analysis already has an open referral (the same signature
    submitted again, or an amendment that still refers), that one is returned and nothing is
    written. An amendment that stops referring leaves an open referral open: the letter may have
    gone, so a doctor closes it with an outcome that says why.
    """
    require_role(actor, Role.DOCTOR)
    urgency = REFERRING_DECISIONS.get(review.management)
    if urgency is None:
        return None
    with transaction.atomic():
        analysis = (
            Analysis.objects.select_for_update()
            .select_related("image__lesion__patient__clinic")
            .get(pk=review.analysis_id)
        )
        patient = analysis.image.lesion.patient
        require_same_clinic(actor, patient.clinic_id)
        review = Review.objects.get(pk=review.pk)
        if not review.is_signed:
            raise ValidationError("Only a signed review opens a referral.")
        destination = review.referral_to.strip()
        if not destination:
            raise ValidationError({"referral_to": DESTINATION_MISSING})
        existing = Referral.objects.filter(analysis=analysis, status=ReferralStatus.OPEN).first()
        if existing is not None:
            return existing
        referral = Referral.objects.create(
            review=review,
            analysis=analysis,
            lesion=analysis.image.lesion,
            destination=destination,
            urgency=urgency,
            due_on=referral_due_on(
                clinic=patient.clinic,
                urgency=urgency,
                opened_on=timezone.localdate(review.signed_at),
            ),
            created_by=actor,
        )
        audit_record(
            action="referral.create",
            user=actor,
            request=request,
            obj=referral,
            patient_id=patient.pk,
            review=review.pk,
            urgency=urgency,
            due_on=referral.due_on.isoformat(),
        )
    return referral


@audited_write("referral.close")
def referral_close(
    *,
    actor: User,
    referral: Referral,
    outcome: str = "",
    with_histopathology: bool = False,
    request=None,
) -> Referral:
    """Close an open referral with its outcome, the lesion's histology result, or both; one of
    them is required. Doctors only. A referral closed already raises ReferralAlreadyClosed and
    is left as it was."""
    require_role(actor, Role.DOCTOR)
    with transaction.atomic():
        referral = (
            Referral.objects.select_for_update()
            .select_related("lesion__patient")
            .get(pk=referral.pk)
        )
        require_same_clinic(actor, referral.lesion.patient.clinic_id)
        if referral.is_closed:
            raise ReferralAlreadyClosed(
                f"This referral was already closed by {referral.closed_by_name} on "
                f"{timezone.localtime(referral.closed_at):%d %b %Y, %H:%M}; nothing was changed."
            )
        outcome = outcome.strip()
        histopathology = None
        if with_histopathology:
            histopathology = Histopathology.objects.filter(lesion_id=referral.lesion_id).first()
            if histopathology is None:
                raise ValidationError(
                    {
                        "with_histopathology": "No histology result is recorded for this lesion "
                        "yet: record it first, or write the outcome."
                    }
                )
        if not outcome and histopathology is None:
            raise ValidationError(
                {
                    "outcome": "Write the outcome, or attach the lesion's histology result, to "
                    "close the referral."
                }
            )
        referral.status = ReferralStatus.CLOSED
        referral.outcome = outcome
        referral.histopathology = histopathology
        referral.closed_by = actor
        referral.closed_by_name = actor.get_full_name()
        referral.closed_at = timezone.now()
        referral.save(
            update_fields=[
                "status",
                "outcome",
                "histopathology",
                "closed_by",
                "closed_by_name",
                "closed_at",
            ]
        )
        audit_record(
            action="referral.close",
            user=actor,
            request=request,
            obj=referral,
            patient_id=referral.lesion.patient_id,
            histopathology=histopathology.pk if histopathology else None,
            overdue=referral.due_on < timezone.localdate(),
        )
    return referral
