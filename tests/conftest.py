"""Fixtures shared by every test: one clinic with a user of each role, and a second clinic."""

from __future__ import annotations

import pytest
from django.test import testcases

from tests import factories

# Django's live server wraps the site in a media-files handler built from settings.MEDIA_URL,
# which the portal sets to None (patient images are never served by URL); urlparse(None) gives
# bytes and every live-server request then fails with a TypeError. Point that handler at a path
# nothing uses. Patched at import, before any live_server starts in this test session.
testcases._MediaFilesHandler.get_base_url = lambda self: "/__media-is-never-served-by-url__/"


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
