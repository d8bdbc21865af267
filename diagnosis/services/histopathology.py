"""Writes of a lesion's histopathology result (doctors only)."""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record, audited_write
from accounts.models import Role, User
from accounts.permissions import require_role, require_same_clinic
from diagnosis.models import (
    DiagnosisChoice,
    Histopathology,
    Lesion,
)

HISTOPATHOLOGY_FIELDS = ("diagnosis", "diagnosis_other", "reported_on", "lab_reference", "notes")


def histopathology_rule_errors(
    *,
    diagnosis: str | None,
    diagnosis_other: str = "",
    reported_on: datetime.date | None,
    born: datetime.date | None = None,
) -> dict[str, str]:
    """The rules of a histology result, field by field: the one place they are written (the
    service refuses what breaks them; the form shows them next to its fields). A report is
    dated in the past, and not before the patient was born (`born`, when known)."""
    errors: dict[str, str] = {}
    if diagnosis == DiagnosisChoice.OTHER and not (diagnosis_other or "").strip():
        errors["diagnosis_other"] = "Name the diagnosis when choosing 'Other'."
    if reported_on is not None and reported_on > timezone.localdate():
        errors["reported_on"] = "The histology report cannot be dated in the future."
    elif reported_on is not None and born is not None and reported_on < born:
        errors["reported_on"] = "The histology report cannot be dated before the patient's birth."
    return errors


@audited_write("histopathology.create", "histopathology.update")
def histopathology_record(
    *,
    actor: User,
    lesion: Lesion,
    diagnosis: str,
    reported_on: datetime.date,
    lab_reference: str,
    diagnosis_other: str = "",
    notes: str = "",
    request=None,
) -> Histopathology:
    """Record (or correct) the histology result of a lesion. Doctors only."""
    require_role(actor, Role.DOCTOR)
    require_same_clinic(actor, lesion.patient.clinic_id)
    errors = histopathology_rule_errors(
        diagnosis=diagnosis,
        diagnosis_other=diagnosis_other,
        reported_on=reported_on,
        born=lesion.patient.date_of_birth,
    )
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        result = Histopathology.objects.select_for_update().filter(lesion=lesion).first()
        created = result is None
        if created:
            result = Histopathology(lesion=lesion, recorded_by=actor)
        result.diagnosis = diagnosis
        result.diagnosis_other = diagnosis_other.strip() if diagnosis == "other" else ""
        result.reported_on = reported_on
        result.lab_reference = lab_reference.strip()
        result.notes = notes
        result.full_clean(exclude=["lesion", "recorded_by"])
        try:
            with transaction.atomic():
                result.save()
        except IntegrityError:
            raise ValidationError(
                "Another histology result for this lesion was just recorded; reload the page."
            ) from None
        audit_record(
            action="histopathology.create" if created else "histopathology.update",
            user=actor,
            request=request,
            obj=result,
            patient_id=lesion.patient_id,
        )
    return result
