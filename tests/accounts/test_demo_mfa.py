"""The demo asks the doctor and the clinic admin for two-factor authentication at their first
log-in, as production does, and the way through it without a phone that load_demo and the
README describe works (issue 13, item 8)."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from tests.worker import REPO_ROOT

DOCTOR = "doctor@demo.clinic"
PASSWORD = "demo-portal-password"
PRINT_ROLES = "from django.conf import settings; print(settings.MFA_REQUIRED_ROLES)"


def _run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def test_the_dev_settings_ask_doctors_and_admins_like_production():
    env = {k: v for k, v in os.environ.items() if k != "MFA_REQUIRED_ROLES"}
    env["DJANGO_SETTINGS_MODULE"] = "melanoma_portal.settings.dev"
    shown = subprocess.run(
        [sys.executable, "-c", PRINT_ROLES],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == "['admin', 'doctor']"


@pytest.fixture
def demo(db, settings):
    settings.DEBUG = True
    settings.MFA_REQUIRED_ROLES = ["admin", "doctor"]
    return _run("load_demo", "--no-images")


def test_load_demo_says_who_needs_an_authenticator_and_how(demo):
    assert f"{DOCTOR} (two-factor authentication)" in demo
    assert "admin@demo.clinic (two-factor authentication)" in demo
    assert "staff@demo.clinic (two-factor" not in demo
    assert "manage.py totp_code <secret>" in demo


def test_the_doctor_gets_through_the_first_and_a_later_log_in_as_load_demo_says(client, demo):
    client.post(reverse("account_login"), {"login": DOCTOR, "password": PASSWORD})
    asked = client.get(reverse("diagnosis:dashboard"))
    assert asked["Location"] == reverse("mfa_activate_totp")

    # allauth confirms the password before an authenticator is added, then shows the secret
    # under the QR code; totp_code turns it into the code to type.
    confirm = client.get(reverse("mfa_activate_totp"))
    assert confirm["Location"].startswith(reverse("account_reauthenticate"))
    client.post(confirm["Location"], {"password": PASSWORD})
    setup = client.get(reverse("mfa_activate_totp"))
    secret = setup.context["form"].secret
    assert secret in setup.content.decode()
    code = _run("totp_code", secret).strip()
    activated = client.post(reverse("mfa_activate_totp"), {"code": code})
    assert activated.status_code == 302
    assert client.get(reverse("diagnosis:dashboard")).status_code == 200

    # A later log-in asks for a code; the command reads the account's own secret (DEBUG).
    client.post(reverse("account_logout"))
    client.post(reverse("account_login"), {"login": DOCTOR, "password": PASSWORD})
    code = _run("totp_code", email=DOCTOR).strip()
    client.post(reverse("mfa_authenticate"), {"code": code})
    assert client.get(reverse("diagnosis:dashboard")).status_code == 200


def test_staff_log_in_without_an_authenticator(client, demo):
    client.post(reverse("account_login"), {"login": "staff@demo.clinic", "password": PASSWORD})
    assert client.get(reverse("diagnosis:dashboard")).status_code == 200


def test_totp_code_refuses_to_read_a_stored_secret_without_debug(demo, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="only with DEBUG"):
        _run("totp_code", email=DOCTOR)


def test_totp_code_explains_a_mistyped_secret(db):
    with pytest.raises(CommandError, match="not an authenticator secret"):
        _run("totp_code", "not-base32-!!")
