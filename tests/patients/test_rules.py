"""A patient's rules hold for every writer (issue 13, item 4): the page's form, the API and the
service that management commands call refuse the same values with the same words. A date of
birth of 2031 ("age -5") or 1800 was accepted by one writer and refused by another."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from patients.models import Patient
from patients.services import patient_create, patient_update
from tests.api.conftest import token_client

VALID = {
    "mrn": "V-2027-1",
    "first_name": "Ida",
    "last_name": "Pfeiffer",
    "date_of_birth": "1950-10-14",
    "sex": "female",
}
TOMORROW = (timezone.localdate() + datetime.timedelta(days=1)).isoformat()
BAD = [
    pytest.param("date_of_birth", "2031-01-01", "in the future", id="born-2031"),
    pytest.param("date_of_birth", TOMORROW, "in the future", id="born-tomorrow"),
    pytest.param("date_of_birth", "1800-06-01", "before 1880", id="born-1800"),
    pytest.param("mrn", "V 2027 1", "An MRN is letters and digits", id="mrn-with-spaces"),
    pytest.param("mrn", "#4711", "An MRN is letters and digits", id="mrn-with-a-sign"),
    pytest.param("mrn", "-4711", "An MRN is letters and digits", id="mrn-starting-with-a-dash"),
]


def _by_service(actor, field, value):
    data = {**VALID, field: value}
    data["date_of_birth"] = datetime.date.fromisoformat(data["date_of_birth"])
    with pytest.raises(ValidationError) as refused:
        patient_create(actor=actor, **data)
    return " ".join(refused.value.message_dict[field])


@pytest.mark.parametrize(("field", "value", "words"), BAD)
def test_every_writer_refuses_the_same_values(client, staff, field, value, words):
    client.force_login(staff)
    page = client.post(reverse("patients:create"), {**VALID, field: value})
    api = token_client(staff).post("/api/v1/patients/", {**VALID, field: value}, format="json")

    assert page.status_code == 200 and words in " ".join(page.context["form"].errors[field])
    assert api.status_code == 400 and words in str(api.json())
    assert words in _by_service(staff, field, value)
    assert not Patient.objects.exists()


@pytest.mark.parametrize(("field", "value", "words"), BAD)
def test_an_edit_obeys_the_same_rules(staff, patient, field, value, words):
    typed = datetime.date.fromisoformat(value) if field == "date_of_birth" else value
    with pytest.raises(ValidationError) as refused:
        patient_update(actor=staff, patient=patient, **{field: typed})
    assert words in " ".join(refused.value.message_dict[field])


@pytest.mark.parametrize("mrn", ["MRN000123", "V-2027-1", "12/3456.7", "ab_99"])
def test_mrns_as_hospitals_write_them_are_accepted(staff, mrn):
    data = {**VALID, "mrn": mrn, "date_of_birth": datetime.date(1950, 10, 14)}
    assert patient_create(actor=staff, **data).mrn == mrn


def test_an_mrn_pasted_with_spaces_around_it_is_the_same_mrn(staff):
    api = token_client(staff).post("/api/v1/patients/", {**VALID, "mrn": " V-1 "}, format="json")
    assert api.status_code == 201
    assert Patient.objects.get().mrn == "V-1"
