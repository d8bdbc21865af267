"""Lesions through the API."""

from __future__ import annotations

from accounts.models import AuditEvent
from diagnosis.models import Lesion
from tests import factories


def test_create_lesion_for_own_patient(api, staff, patient):
    response = api.post(
        "/api/v1/lesions/",
        {"patient": patient.pk, "anatomic_site": "back", "label": "left scapula"},
        format="json",
    )

    assert response.status_code == 201, response.content
    lesion = Lesion.objects.get(pk=response.json()["id"])
    assert (lesion.patient, lesion.created_by, lesion.anatomic_site) == (patient, staff, "back")
    assert AuditEvent.objects.filter(action="lesion.create", patient_id=patient.pk).exists()


def test_create_lesion_for_other_clinics_patient_is_404(other_api, patient):
    response = other_api.post(
        "/api/v1/lesions/", {"patient": patient.pk, "anatomic_site": "back"}, format="json"
    )

    assert response.status_code == 404
    assert not Lesion.objects.exists()


def test_unknown_anatomic_site_is_400(api, patient):
    response = api.post(
        "/api/v1/lesions/", {"patient": patient.pk, "anatomic_site": "elbow-ish"}, format="json"
    )

    assert response.status_code == 400
    assert "anatomic_site" in response.json()["errors"]


def test_list_filters_by_patient_within_clinic(api, clinic, lesion):
    other_patient = factories.PatientFactory(clinic=clinic)
    factories.LesionFactory(patient=other_patient)

    response = api.get("/api/v1/lesions/", {"patient": lesion.patient_id})

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [lesion.pk]


def test_list_of_other_clinics_patient_is_404(other_api, lesion):
    assert other_api.get("/api/v1/lesions/", {"patient": lesion.patient_id}).status_code == 404
    assert other_api.get("/api/v1/lesions/").json()["results"] == []
