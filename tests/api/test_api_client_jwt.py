"""docs/api-client.py's JWT sign-in against the live server: it signs in as a person with the
authenticator code, renews its access token before expiry, and reports refusals in the API's
words. (The upload-to-result path with a real worker is tests/api/test_api_client.py's.)"""

from __future__ import annotations

import datetime
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests import factories

CLIENT = Path(settings.BASE_DIR) / "docs" / "api-client.py"
SAMPLE = Path(settings.BASE_DIR) / "samples" / "mel_ISIC_0024481.jpg"


def _module():
    spec = importlib.util.spec_from_file_location("api_client", CLIENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(live_server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CLIENT), str(SAMPLE), "--base-url", live_server.url, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def doctor_with_app(transactional_db):
    doctor = factories.DoctorFactory(clinic=factories.ClinicFactory())
    return doctor, factories.activate_totp(doctor)


def test_client_signs_in_with_the_code_and_reaches_the_api(live_server, doctor_with_app):
    doctor, secret = doctor_with_app
    result = _run(
        live_server,
        "--email",
        doctor.email,
        "--password",
        factories.PASSWORD,
        "--code",
        factories.totp_code(secret),
        "--lesion",
        "999999",
    )
    # Signed in (a 401 would say so): the API's own answer about the lesion comes back.
    assert result.returncode == 1
    assert "HTTP 404" in result.stderr, result.stderr


def test_client_reports_a_missing_code_in_the_apis_words(live_server, doctor_with_app):
    doctor, _ = doctor_with_app
    result = _run(
        live_server, "--email", doctor.email, "--password", factories.PASSWORD, "--lesion", "1"
    )
    assert result.returncode == 1
    assert "HTTP 401: This account uses two-factor authentication" in result.stderr


def test_client_renews_the_access_token_before_it_expires(live_server, doctor_with_app):
    doctor, secret = doctor_with_app
    client = _module()
    session = client.JwtSession(
        live_server.url, doctor.email, factories.PASSWORD, factories.totp_code(secret)
    )
    first_refresh = session.refresh_token
    session.access_expires = datetime.datetime.now(datetime.UTC)  # as if minutes had passed

    response = session.get(f"{live_server.url}/api/v1/patients/", timeout=30)

    assert response.status_code == 200
    assert session.refresh_token != first_refresh
    session.sign_out()
    assert session.get(f"{live_server.url}/api/v1/patients/", timeout=30).status_code == 401
