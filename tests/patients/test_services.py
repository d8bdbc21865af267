"""Patient writes: the clinic comes from the actor, MRNs are unique per clinic, roles checked."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from patients.services import patient_create, patient_update
from tests import factories

FIELDS = {
    "mrn": "M-1",
    "first_name": "Ida",
    "last_name": "Pfeiffer",
    "date_of_birth": datetime.date(1950, 10, 14),
    "sex": "female",
}


def test_patient_is_created_in_the_actors_clinic(staff):
    patient = patient_create(actor=staff, **FIELDS)
    assert patient.clinic_id == staff.clinic_id and patient.created_by == staff


def test_duplicate_mrn_in_one_clinic_is_a_validation_error(staff):
    patient_create(actor=staff, **FIELDS)
    with pytest.raises(ValidationError) as error:
        patient_create(actor=staff, **FIELDS)
    assert "mrn" in error.value.message_dict


def test_user_outside_a_clinic_cannot_create_patients(db):
    auditor = factories.UserFactory(clinic=None, role="", is_staff=True)
    with pytest.raises(PermissionDenied):
        patient_create(actor=auditor, **FIELDS)


def test_another_clinic_cannot_update_a_patient(other_staff, patient):
    with pytest.raises(PermissionDenied):
        patient_update(actor=other_staff, patient=patient, last_name="Changed")
    patient.refresh_from_db()
    assert patient.last_name != "Changed"


def test_update_of_a_patient_with_no_recorded_creator_works(staff, patient):
    assert patient.created_by is None
    patient_update(actor=staff, patient=patient, phone="+43 1 555")
    patient.refresh_from_db()
    assert patient.phone == "+43 1 555"


def test_unknown_field_is_a_programming_error(staff):
    with pytest.raises(TypeError):
        patient_create(actor=staff, **FIELDS, clinic_id=99)
