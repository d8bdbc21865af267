"""Writes to patient records, each audited in its own transaction."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record, audited_write
from accounts.models import User
from accounts.permissions import CLINICAL_ROLES, require_role, require_same_clinic
from patients.models import Patient

PATIENT_FIELDS = (
    "mrn",
    "first_name",
    "last_name",
    "date_of_birth",
    "sex",
    "fitzpatrick_skin_type",
    "phone",
    "email",
    "address",
)


def _save(patient: Patient) -> Patient:
    # Typed or pasted with a stray space: the same MRN (the model's format allows none).
    patient.mrn = (patient.mrn or "").strip()
    # created_by is who registered the patient: empty for imported records or once that user
    # is gone, never something an edit must supply.
    patient.full_clean(exclude=["created_by"], validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            patient.save()
    except IntegrityError:
        raise ValidationError(
            {"mrn": "A patient with this MRN already exists in this clinic."}
        ) from None
    return patient


@audited_write("patient.create")
def patient_create(*, actor: User, request=None, **fields: Any) -> Patient:
    require_role(actor, *CLINICAL_ROLES)
    unknown = set(fields) - set(PATIENT_FIELDS)
    if unknown:
        raise TypeError(f"unknown patient fields: {sorted(unknown)}")
    with transaction.atomic():
        patient = _save(Patient(clinic_id=actor.clinic_id, created_by=actor, **fields))
        audit_record(action="patient.create", user=actor, request=request, obj=patient)
    return patient


@audited_write("patient.update")
def patient_update(*, actor: User, patient: Patient, request=None, **fields: Any) -> Patient:
    require_role(actor, *CLINICAL_ROLES)
    require_same_clinic(actor, patient.clinic_id)
    for name, value in fields.items():
        if name not in PATIENT_FIELDS:
            raise TypeError(f"unknown patient field: {name}")
        setattr(patient, name, value)
    with transaction.atomic():
        patient = _save(patient)
        audit_record(
            action="patient.update", user=actor, request=request, obj=patient, fields=sorted(fields)
        )
    return patient


@audited_write("patient.research_consent")
def patient_set_research_consent(
    *, actor: User, patient: Patient, consent: bool, request=None
) -> Patient:
    """Record that the patient consents (or no longer consents) to the research use of their
    images, with who recorded it and when. Audited with the value before and after, even when
    it did not change (the request named this patient)."""
    require_role(actor, *CLINICAL_ROLES)
    require_same_clinic(actor, patient.clinic_id)
    with transaction.atomic():
        patient = Patient.objects.select_for_update().get(pk=patient.pk)
        before = patient.research_consent
        if before != consent:
            patient.research_consent = consent
            patient.research_consent_changed_at = timezone.now()
            patient.research_consent_changed_by_name = actor.get_full_name()
            patient.save(
                update_fields=[
                    "research_consent",
                    "research_consent_changed_at",
                    "research_consent_changed_by_name",
                    "updated_at",
                ]
            )
        audit_record(
            action="patient.research_consent",
            user=actor,
            request=request,
            obj=patient,
            before=before,
            after=consent,
        )
    return patient
