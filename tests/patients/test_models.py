"""Patient records at the database level."""

from __future__ import annotations

import datetime

import pytest
from django.db import IntegrityError, transaction

from tests import factories


def test_mrn_is_unique_within_a_clinic_at_the_database(clinic):
    factories.PatientFactory(clinic=clinic, mrn="X-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.PatientFactory(clinic=clinic, mrn="X-1")


def test_age_counts_birthdays_not_years(patient):
    patient.date_of_birth = datetime.date(1980, 6, 15)
    assert patient.age_on(datetime.date(2020, 6, 14)) == 39
    assert patient.age_on(datetime.date(2020, 6, 15)) == 40
