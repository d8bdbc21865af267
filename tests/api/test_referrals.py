"""Referrals through the API: the same life as on the pages (open, overdue, closed), the same
services, the same refusals."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from diagnosis.models import Referral
from diagnosis.services.review import review_save
from tests.api.conftest import token_client

REFER = {
    "agrees_with_ai": True,
    "diagnosis": "mel",
    "management": "refer_urgently",
    "referral_to": "Dermatology, General Hospital",
}


@pytest.fixture
def doctor_api(doctor):
    return token_client(doctor)


@pytest.fixture
def referral(doctor, done_analysis) -> Referral:
    review_save(actor=doctor, analysis=done_analysis, sign=True, **REFER)
    return Referral.objects.get()


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def test_a_referrals_life_through_the_api(api, doctor_api, referral, done_analysis):
    url = "/api/v1/referrals/"

    # Open, not overdue.
    assert _ids(api.get(url, {"status": "open"})) == [referral.pk]
    assert _ids(api.get(url, {"status": "overdue"})) == []
    row = api.get(f"{url}{referral.pk}/").json()
    assert row["destination"] == "Dermatology, General Hospital"
    assert row["urgency"] == "urgent"
    assert row["due_on"] == (timezone.localdate() + datetime.timedelta(days=14)).isoformat()
    assert (row["status"], row["is_overdue"]) == ("open", False)
    assert row["analysis"] == done_analysis.pk

    # The due date passes: overdue.
    Referral.objects.filter(pk=referral.pk).update(
        due_on=timezone.localdate() - datetime.timedelta(days=1)
    )
    assert _ids(api.get(url, {"status": "overdue"})) == [referral.pk]
    assert api.get(f"{url}{referral.pk}/").json()["is_overdue"] is True

    # A doctor closes it with the outcome.
    response = doctor_api.post(
        f"{url}{referral.pk}/close/", {"outcome": "Seen; excised."}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["outcome"], body["is_overdue"]) == (
        "closed",
        "Seen; excised.",
        False,
    )

    assert _ids(api.get(url, {"status": "closed"})) == [referral.pk]
    assert _ids(api.get(url, {"status": "open"})) == []
    assert _ids(api.get(url, {"status": "overdue"})) == []
    assert AuditEvent.objects.filter(action="referral.close").count() == 1
    assert AuditEvent.objects.filter(action="referral.list").count() == 6
    assert AuditEvent.objects.filter(action="referral.view").count() == 2


def test_closing_twice_is_a_conflict_that_changes_nothing(doctor_api, referral):
    url = f"/api/v1/referrals/{referral.pk}/close/"
    doctor_api.post(url, {"outcome": "Excised."}, format="json")

    again = doctor_api.post(url, {"outcome": "Something else"}, format="json")

    assert again.status_code == 409
    assert "already closed" in again.json()["message"]
    referral.refresh_from_db()
    assert referral.outcome == "Excised."


def test_closing_without_outcome_or_histology_is_refused_in_words(doctor_api, referral):
    response = doctor_api.post(f"/api/v1/referrals/{referral.pk}/close/", {}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"]["outcome"] == [
        "Write the outcome, or attach the lesion's histology result, to close the referral."
    ]


def test_staff_may_read_but_not_close(api, referral):
    assert api.get(f"/api/v1/referrals/{referral.pk}/").status_code == 200

    response = api.post(
        f"/api/v1/referrals/{referral.pk}/close/", {"outcome": "Seen"}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["message"] == "Only a doctor can do this."
    referral.refresh_from_db()
    assert referral.status == "open"


def test_another_clinics_referral_is_404(other_api, other_clinic, referral):
    from tests import factories

    other_doctor = token_client(factories.DoctorFactory(clinic=other_clinic))

    assert other_api.get(f"/api/v1/referrals/{referral.pk}/").status_code == 404
    assert _ids(other_api.get("/api/v1/referrals/")) == []
    closing = other_doctor.post(
        f"/api/v1/referrals/{referral.pk}/close/", {"outcome": "x"}, format="json"
    )
    assert closing.status_code == 404


def test_an_unknown_status_filter_is_explained(api):
    response = api.get("/api/v1/referrals/", {"status": "late"})

    assert response.status_code == 400
    assert response.json()["errors"]["status"] == ["Use status=open, overdue or closed."]
