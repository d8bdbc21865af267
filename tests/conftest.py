"""Fixtures shared by every test: one clinic with a user of each role, and a second clinic."""

from __future__ import annotations

import pytest
from django.test import testcases
from django.urls import reverse

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


@pytest.fixture
def sign_in_with_mfa(client):
    """Sign a user in as a person does when two-factor authentication is on (allauth's log-in
    page: password, then a code from the authenticator app) on the `client` fixture; returns
    the last response. The Django admin admits no one signed in otherwise (accounts.mfa)."""

    def sign_in(user, *, next_url: str | None = None):
        secret = factories.activate_totp(user)
        data = {"login": user.email, "password": factories.PASSWORD}
        if next_url:
            data["next"] = next_url
        client.post(reverse("account_login"), data)
        response = client.post(reverse("mfa_authenticate"), {"code": factories.totp_code(secret)})
        assert "_auth_user_id" in client.session, "the MFA sign-in did not complete"
        return response

    return sign_in
