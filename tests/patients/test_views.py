"""Patient pages: search, pagination, create, edit, and a patient's page newest first."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from diagnosis.models import Analysis, Lesion
from patients.models import Patient
from tests import factories

NEW_PATIENT = {
    "mrn": "MRN-4711",
    "first_name": "Maria",
    "last_name": "Gruber",
    "date_of_birth": "1962-03-08",
    "sex": "female",
    "fitzpatrick_skin_type": "2",
    "phone": "+43 1 234",
    "email": "maria@example.org",
    "address": "Hauptstrasse 1",
}


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def test_search_matches_name_and_mrn_within_the_clinic_only(staff_client, clinic, other_clinic):
    factories.PatientFactory(clinic=clinic, first_name="Eva", last_name="Berger", mrn="A-1")
    factories.PatientFactory(clinic=clinic, first_name="Karl", last_name="Huber", mrn="B-22")
    factories.PatientFactory(clinic=other_clinic, first_name="Eva", last_name="Berger", mrn="A-2")

    by_name = staff_client.get(reverse("patients:list"), {"q": "berger"}).context["page"]
    by_mrn = staff_client.get(reverse("patients:list"), {"q": "b-22"}).context["page"]

    assert [p.mrn for p in by_name] == ["A-1"]
    assert [p.last_name for p in by_mrn] == ["Huber"]


def test_list_is_paginated_25_to_a_page(staff_client, clinic):
    factories.PatientFactory.create_batch(30, clinic=clinic)

    first = staff_client.get(reverse("patients:list")).context["page"]
    second = staff_client.get(reverse("patients:list"), {"page": 2}).context["page"]

    assert len(first.object_list) == 25 and len(second.object_list) == 5
    assert not set(first.object_list) & set(second.object_list)


def test_nonsense_page_number_shows_a_page_not_an_error(staff_client, clinic):
    factories.PatientFactory(clinic=clinic)
    response = staff_client.get(reverse("patients:list"), {"page": "abc"})
    assert response.status_code == 200


def test_create_registers_patient_in_own_clinic_and_audits(staff_client, staff):
    response = staff_client.post(reverse("patients:create"), NEW_PATIENT)

    patient = Patient.objects.get(mrn="MRN-4711")
    assert response["Location"] == reverse("patients:detail", args=[patient.pk])
    assert patient.clinic == staff.clinic and patient.created_by == staff
    assert patient.fitzpatrick_skin_type == 2
    assert AuditEvent.objects.filter(action="patient.create", patient_id=patient.pk).exists()


def test_fitzpatrick_type_is_optional(staff_client):
    staff_client.post(reverse("patients:create"), {**NEW_PATIENT, "fitzpatrick_skin_type": ""})
    assert Patient.objects.get().fitzpatrick_skin_type is None


def test_duplicate_mrn_in_the_clinic_is_refused_and_keeps_what_was_typed(staff_client, clinic):
    factories.PatientFactory(clinic=clinic, mrn="MRN-4711")

    response = staff_client.post(reverse("patients:create"), NEW_PATIENT)

    html = response.content.decode()
    assert response.status_code == 200
    assert "already exists in this clinic" in html
    assert 'value="Gruber"' in html
    assert Patient.objects.count() == 1


def test_same_mrn_in_another_clinic_is_allowed(staff_client, other_clinic):
    factories.PatientFactory(clinic=other_clinic, mrn="MRN-4711")
    staff_client.post(reverse("patients:create"), NEW_PATIENT)
    assert Patient.objects.filter(mrn="MRN-4711").count() == 2


def test_missing_required_fields_are_named(staff_client):
    response = staff_client.post(reverse("patients:create"), {"mrn": "X"})
    html = response.content.decode()
    assert html.count("This field is required") == 4  # names, date of birth, sex
    assert not Patient.objects.exists()


def test_edit_changes_details_and_audits(staff_client, patient):
    data = {**NEW_PATIENT, "mrn": patient.mrn, "last_name": "Renamed"}
    staff_client.post(reverse("patients:edit", args=[patient.pk]), data)
    patient.refresh_from_db()
    assert patient.last_name == "Renamed"
    assert AuditEvent.objects.filter(action="patient.update", patient_id=patient.pk).exists()


def test_edit_to_another_patients_mrn_is_refused(staff_client, clinic, patient):
    factories.PatientFactory(clinic=clinic, mrn="TAKEN")
    response = staff_client.post(
        reverse("patients:edit", args=[patient.pk]), {**NEW_PATIENT, "mrn": "TAKEN"}
    )
    assert "already exists in this clinic" in response.content.decode()
    patient.refresh_from_db()
    assert patient.mrn != "TAKEN"


def test_patient_page_lists_lesions_and_analyses_newest_first(staff_client, patient):
    old_lesion = factories.LesionFactory(patient=patient, label="old spot")
    new_lesion = factories.LesionFactory(patient=patient, label="new spot")
    Lesion.objects.filter(pk=old_lesion.pk).update(
        created_at=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    )
    old = factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=old_lesion))
    new = factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=new_lesion))
    Analysis.objects.filter(pk=old.pk).update(
        queued_at=datetime.datetime(2020, 1, 2, tzinfo=datetime.UTC)
    )

    response = staff_client.get(reverse("patients:detail", args=[patient.pk]))

    assert [lesion.label for lesion in response.context["lesions"]] == ["new spot", "old spot"]
    assert [a.pk for a in response.context["analyses"]] == [new.pk, old.pk]
    assert AuditEvent.objects.filter(action="patient.view", patient_id=patient.pk).exists()


def test_patient_page_runs_a_fixed_number_of_queries(
    staff_client, patient, django_assert_max_num_queries
):
    for _ in range(5):
        lesion = factories.LesionFactory(patient=patient)
        factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
    with django_assert_max_num_queries(12):
        staff_client.get(reverse("patients:detail", args=[patient.pk]))
