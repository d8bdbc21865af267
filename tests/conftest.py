"""Fixtures shared by every test: one clinic with a user of each role, and a second clinic."""

from __future__ import annotations

import pytest

from tests import factories


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def clinic(db):
    return factories.ClinicFactory(name="Vienna Skin Clinic")


@pytest.fixture
def other_clinic(db):
    return factories.ClinicFactory(name="Graz Skin Clinic")


@pytest.fixture
def staff(clinic):
    return factories.UserFactory(clinic=clinic, email="staff@vienna.example")


@pytest.fixture
def doctor(clinic):
    return factories.DoctorFactory(clinic=clinic, email="doctor@vienna.example")


@pytest.fixture
def clinic_admin(clinic):
    return factories.ClinicAdminFactory(clinic=clinic, email="admin@vienna.example")


@pytest.fixture
def other_staff(other_clinic):
    return factories.UserFactory(clinic=other_clinic, email="staff@graz.example")


@pytest.fixture
def patient(clinic):
    return factories.PatientFactory(clinic=clinic)


@pytest.fixture
def lesion(patient):
    return factories.LesionFactory(patient=patient)
