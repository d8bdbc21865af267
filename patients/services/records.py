"""Writes to patient records, each audited in its own transaction."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

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
