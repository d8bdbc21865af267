"""Patients through the API: clinic scoping, validation, audit."""

from __future__ import annotations

from accounts.models import AuditEvent
from patients.models import Patient
from tests import factories

NEW_PATIENT = {
    "mrn": "VIE-0042",
    "first_name": "Maria",
    "last_name": "Gruber",
    "date_of_birth": "1964-03-02",
    "sex": "female",
}


def test_list_shows_only_the_callers_clinic(api, patient, other_clinic):
    factories.PatientFactory(clinic=other_clinic, last_name="Elsewhere")

    response = api.get("/api/v1/patients/")

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [patient.pk]


def test_search_matches_name_and_mrn(api, clinic):
    wanted = factories.PatientFactory(clinic=clinic, last_name="Gruber", mrn="X-1")
    factories.PatientFactory(clinic=clinic, last_name="Huber", mrn="X-2")

    by_name = api.get("/api/v1/patients/", {"search": "grub"}).json()["results"]
    by_mrn = api.get("/api/v1/patients/", {"search": "X-1"}).json()["results"]

    assert [row["id"] for row in by_name] == [wanted.pk]
    assert [row["id"] for row in by_mrn] == [wanted.pk]


def test_create_registers_patient_in_callers_clinic_and_audits(api, staff):
    response = api.post("/api/v1/patients/", NEW_PATIENT, format="json")

    assert response.status_code == 201, response.content
    patient = Patient.objects.get(pk=response.json()["id"])
    assert patient.clinic_id == staff.clinic_id
    assert patient.created_by == staff
    assert AuditEvent.objects.filter(
        action="patient.create", user=staff, patient_id=patient.pk
    ).exists()


def test_create_without_required_field_is_400_naming_the_field(api):
    payload = {key: value for key, value in NEW_PATIENT.items() if key != "date_of_birth"}

    response = api.post("/api/v1/patients/", payload, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400
    assert body["errors"]["date_of_birth"] == ["This field is required."]
    assert "date_of_birth" in body["message"]
    assert not Patient.objects.exists()


def test_duplicate_mrn_in_same_clinic_is_400_with_message(api, patient):
    response = api.post("/api/v1/patients/", {**NEW_PATIENT, "mrn": patient.mrn}, format="json")

    assert response.status_code == 400
    assert "already exists" in response.json()["errors"]["mrn"][0]


def test_future_date_of_birth_is_refused(api):
    response = api.post(
        "/api/v1/patients/", {**NEW_PATIENT, "date_of_birth": "2999-01-01"}, format="json"
    )

    assert response.status_code == 400
    assert "future" in response.json()["errors"]["date_of_birth"][0]


def test_retrieve_audits_the_view(api, staff, patient):
    response = api.get(f"/api/v1/patients/{patient.pk}/")

    assert response.status_code == 200
    assert response.json()["mrn"] == patient.mrn
    assert AuditEvent.objects.filter(action="patient.view", patient_id=patient.pk).exists()


def test_other_clinics_patient_is_404_for_read_and_write(other_api, patient):
    read = other_api.get(f"/api/v1/patients/{patient.pk}/")
    write = other_api.patch(f"/api/v1/patients/{patient.pk}/", {"first_name": "X"}, format="json")

    assert read.status_code == 404
    assert read.json() == {"status": 404, "code": "not_found", "message": "No such patient."}
    assert write.status_code == 404
    patient.refresh_from_db()
    assert patient.first_name != "X"


def test_partial_update_changes_only_given_fields(api, staff, clinic):
    # created_by is set: the model refuses a blank creator on full_clean (see the report).
    patient = factories.PatientFactory(clinic=clinic, created_by=staff)

    response = api.patch(f"/api/v1/patients/{patient.pk}/", {"phone": "+43 1 234"}, format="json")

    assert response.status_code == 200
    patient.refresh_from_db()
    assert patient.phone == "+43 1 234"
    assert AuditEvent.objects.filter(action="patient.update", patient_id=patient.pk).exists()


def test_full_update_requires_every_required_field(api, patient):
    response = api.put(f"/api/v1/patients/{patient.pk}/", {"phone": "1"}, format="json")

    assert response.status_code == 400
    assert set(response.json()["errors"]) >= {"mrn", "first_name", "last_name", "sex"}
