"""Every read of patient data is recorded once, and no event names a patient that was not read.

The generated matrix (test_permission_matrix.py) checks that every page leaves an event; these
tests pin what the events say for the pages the outside-style test found unrecorded (the
dashboard, a patient's upload, new-lesion and erase pages), the log-ins the lock-out refused,
and the API lists filtered by another clinic's patient.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from melanoma_portal.settings import base
from tests import factories


def _events(action: str):
    return AuditEvent.objects.filter(action=action)


def test_dashboard_is_audited_once_naming_each_patient_it_lists(
    client, staff, clinic, other_clinic
):
    listed = [factories.PatientFactory(clinic=clinic) for _ in range(2)]
    for patient in listed:
        image = factories.DermoscopicImageFactory(lesion=factories.LesionFactory(patient=patient))
        factories.DoneAnalysisFactory(image=image)
    stranger = factories.PatientFactory(clinic=other_clinic)
    factories.DoneAnalysisFactory(
        image=factories.DermoscopicImageFactory(lesion=factories.LesionFactory(patient=stranger))
    )
    client.force_login(staff)

    response = client.get(reverse("diagnosis:dashboard"))

    assert response.status_code == 200
    assert listed[0].mrn in response.content.decode()
    event = _events("dashboard.view").get()
    assert event.user == staff and event.clinic_id == clinic.pk
    assert event.detail["patients"] == sorted(p.pk for p in listed)
    assert stranger.pk not in event.detail["patients"]


def test_an_empty_dashboard_is_audited_naming_no_one(client, staff):
    client.force_login(staff)
    client.get(reverse("diagnosis:dashboard"))
    assert _events("dashboard.view").get().detail["patients"] == []


PATIENT_PAGES = {
    "upload": ("diagnosis:upload", "staff"),
    "lesion_create": ("diagnosis:lesion_create", "staff"),
    "erase": ("patient_rights:erase", "clinic_admin"),
}


@pytest.mark.parametrize("page", PATIENT_PAGES, ids=PATIENT_PAGES)
def test_a_patients_form_pages_are_audited_as_a_view_of_that_patient(
    client, request, patient, page
):
    url_name, role = PATIENT_PAGES[page]
    client.force_login(request.getfixturevalue(role))

    response = client.get(reverse(url_name, args=[patient.pk]))

    assert response.status_code == 200
    assert patient.last_name in response.content.decode()
    event = _events("patient.view").get()
    assert event.patient_id == patient.pk and event.detail == {"page": page}


def test_erase_page_refusing_a_wrong_mrn_records_the_view_and_erases_nothing(
    client, clinic_admin, patient
):
    client.force_login(clinic_admin)
    response = client.post(
        reverse("patient_rights:erase", args=[patient.pk]),
        {"confirm_mrn": "not-the-mrn", "reason": "asked"},
    )
    assert response.status_code == 400
    assert _events("patient.view").get().patient_id == patient.pk
    assert not _events("patient.erase").exists()


@pytest.fixture
def lockout(settings):
    settings.ACCOUNT_RATE_LIMITS = base.ACCOUNT_RATE_LIMITS  # the real rules, off in tests
    cache.clear()
    yield
    cache.clear()


def test_every_log_in_attempt_is_recorded_including_those_the_lockout_refused(
    client, staff, lockout
):
    for _ in range(7):
        client.post(
            reverse("account_login"),
            {"login": staff.email, "password": "wrong-password-123"},
            REMOTE_ADDR="10.0.0.7",
        )
    refused = client.post(
        reverse("account_login"),
        {"login": staff.email, "password": factories.PASSWORD},
        REMOTE_ADDR="10.0.0.7",
    )

    assert "Too many failed sign-ins for this account" in refused.content.decode()
    attempts = AuditEvent.objects.filter(action__startswith="login.").order_by("id")
    assert [e.action for e in attempts] == ["login.failed"] * 5 + ["login.locked_out"] * 3
    assert {e.detail["locked"] for e in attempts[5:]} == {"key"}  # the account, not the address
    assert {e.user_email for e in attempts} == {staff.email}
    assert {e.user_id for e in attempts} == {staff.pk}
    assert {e.ip_address for e in attempts} == {"10.0.0.7"}


def _signed_review(analysis):
    doctor = factories.DoctorFactory(clinic=analysis.image.lesion.patient.clinic)
    return factories.ReviewFactory(
        analysis=analysis,
        author=doctor,
        signed_at=timezone.now(),
        signed_by=doctor,
        signed_by_name=doctor.get_full_name(),
    )


def _patient_with_a_reviewed_analysis(clinic):
    patient = factories.PatientFactory(clinic=clinic)
    image = factories.DermoscopicImageFactory(lesion=factories.LesionFactory(patient=patient))
    _signed_review(factories.DoneAnalysisFactory(image=image))
    return patient


API_LISTS = {
    "analyses": ("api:analysis-list", "analysis.list"),
    "reviews": ("api:review-list", "review.list"),
}


@pytest.mark.parametrize("listing", API_LISTS, ids=API_LISTS)
def test_an_api_list_filtered_by_another_clinics_patient_names_no_patient(
    client, staff, clinic, other_clinic, listing
):
    url_name, action = API_LISTS[listing]
    stranger = _patient_with_a_reviewed_analysis(other_clinic)
    client.force_login(staff)

    response = client.get(reverse(url_name), {"patient": stranger.pk})

    assert response.status_code == 200 and response.json()["results"] == []
    event = _events(action).get()
    assert event.patient_id is None and event.detail["count"] == 0
    assert not AuditEvent.objects.filter(patient_id=stranger.pk).exists()


@pytest.mark.parametrize("listing", API_LISTS, ids=API_LISTS)
def test_an_api_list_filtered_by_an_own_patient_names_that_patient(client, staff, clinic, listing):
    url_name, action = API_LISTS[listing]
    patient = _patient_with_a_reviewed_analysis(clinic)
    client.force_login(staff)

    response = client.get(reverse(url_name), {"patient": patient.pk})

    assert len(response.json()["results"]) == 1
    assert _events(action).get().patient_id == patient.pk
