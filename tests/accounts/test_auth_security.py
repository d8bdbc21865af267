"""Log-in security: two-factor authentication for doctors and admins, session time-outs, cookie
flags and response headers (lock-out after failed log-ins: test_lockout.py)."""

from __future__ import annotations

import time

import pytest
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.signals import SESSION_LOGIN_AT
from tests import factories

LOGIN = "account_login"


def log_in(client, email: str, password: str, ip: str = "10.0.0.1"):
    return client.post(reverse(LOGIN), {"login": email, "password": password}, REMOTE_ADDR=ip)


def is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_correct_password_logs_in_and_is_audited(client, staff):
    response = log_in(client, staff.email, factories.PASSWORD)
    assert response.status_code == 302 and is_logged_in(client)
    event = AuditEvent.objects.get(action="login")
    assert event.user == staff and event.clinic_id == staff.clinic_id
    assert event.ip_address == "10.0.0.1"


def test_failed_log_in_records_the_attempted_email_without_the_password(client, staff):
    log_in(client, staff.email, "wrong-password-123")
    event = AuditEvent.objects.get(action="login.failed")
    assert event.user_email == staff.email
    assert "wrong-password" not in str(event.detail)


def test_log_out_is_audited(client, staff):
    client.force_login(staff)
    client.post(reverse("account_logout"))
    assert AuditEvent.objects.filter(action="logout", user=staff).exists()


# --- two-factor authentication ---------------------------------------------------------------


@pytest.fixture
def mfa_required(settings):
    settings.MFA_REQUIRED_ROLES = ["admin", "doctor"]


def activate_totp(user) -> str:
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    RecoveryCodes.activate(user)
    return secret


@pytest.mark.parametrize("role_fixture", ["doctor", "clinic_admin"])
def test_doctor_or_admin_without_authenticator_is_sent_to_set_one_up(
    client, request, role_fixture, mfa_required
):
    user = request.getfixturevalue(role_fixture)
    log_in(client, user.email, factories.PASSWORD)
    response = client.get(reverse("patients:list"))
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")
    # The set-up page stays reachable: allauth asks for the password once more, then shows it.
    setup = client.get(reverse("mfa_activate_totp"))
    assert setup.status_code == 302 and setup["Location"].startswith(
        reverse("account_reauthenticate")
    )
    client.post(reverse("account_reauthenticate"), {"password": factories.PASSWORD})
    assert client.get(reverse("mfa_activate_totp")).status_code == 200


def test_staff_needs_no_authenticator(client, staff, mfa_required):
    client.force_login(staff)
    assert client.get(reverse("patients:list")).status_code == 200


def test_doctor_with_authenticator_gets_in(client, doctor, mfa_required):
    activate_totp(doctor)
    client.force_login(doctor)
    assert client.get(reverse("patients:list")).status_code == 200


def test_api_call_of_doctor_without_authenticator_is_refused(client, doctor, mfa_required):
    client.force_login(doctor)
    response = client.get("/api/v1/patients/")
    assert response.status_code == 403


def test_log_in_with_totp_needs_the_current_code(client, doctor, mfa_required):
    secret = activate_totp(doctor)
    response = log_in(client, doctor.email, factories.PASSWORD)
    assert response.status_code == 302 and response["Location"] == reverse("mfa_authenticate")
    assert not is_logged_in(client)
    wrong = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert wrong.status_code == 200 and not is_logged_in(client)
    counter = next(iter(yield_hotp_counters_from_time()))
    code = format_hotp_value(hotp_value(secret, counter))
    client.post(reverse("mfa_authenticate"), {"code": code})
    assert is_logged_in(client)
    assert client.get(reverse("patients:list")).status_code == 200


def test_recovery_code_replaces_a_lost_phone_once(client, doctor, mfa_required):
    activate_totp(doctor)
    code = RecoveryCodes(doctor.authenticator_set.get(type="recovery_codes")).get_unused_codes()[0]
    log_in(client, doctor.email, factories.PASSWORD)
    client.post(reverse("mfa_authenticate"), {"code": code})
    assert is_logged_in(client)
    client.post(reverse("account_logout"))
    log_in(client, doctor.email, factories.PASSWORD)
    client.post(reverse("mfa_authenticate"), {"code": code})
    assert not is_logged_in(client)


# --- sessions, cookies, headers --------------------------------------------------------------


def _age_session(client, **offsets: float) -> None:
    session = client.session
    for key, seconds in offsets.items():
        session[key] = time.time() - seconds
    session.save()


def test_idle_session_is_logged_out_after_the_idle_timeout(client, staff, settings):
    settings.SESSION_IDLE_TIMEOUT_S = 30 * 60
    client.force_login(staff)
    assert client.get(reverse("patients:list")).status_code == 200
    _age_session(client, _portal_last_seen=31 * 60)
    response = client.get(reverse("patients:list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse(LOGIN))
    assert not is_logged_in(client)
    assert AuditEvent.objects.filter(action="logout", detail__reason="timeout.idle").exists()


def test_active_session_is_kept(client, staff):
    client.force_login(staff)
    client.get(reverse("patients:list"))
    _age_session(client, _portal_last_seen=29 * 60)
    assert client.get(reverse("patients:list")).status_code == 200


def test_busy_session_ends_at_the_absolute_timeout(client, staff, settings):
    settings.SESSION_ABSOLUTE_TIMEOUT_S = 8 * 3600
    client.force_login(staff)
    client.get(reverse("patients:list"))
    _age_session(client, **{SESSION_LOGIN_AT: 8 * 3600 + 5, "_portal_last_seen": 10})
    response = client.get(reverse("patients:list"))
    assert response.status_code == 302 and not is_logged_in(client)


def test_session_and_csrf_cookies_are_httponly_and_samesite(client, staff):
    response = log_in(client, staff.email, factories.PASSWORD)
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    page = client.get(reverse(LOGIN))
    csrf = page.cookies.get("csrftoken") or client.cookies["csrftoken"]
    assert csrf["samesite"] == "Lax"


def test_every_page_sends_the_security_headers(client, staff):
    client.force_login(staff)
    response = client.get(reverse("patients:list"))
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "geolocation=()" in response["Permissions-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert "no-store" in response["Cache-Control"]


def test_login_page_forms_carry_a_csrf_token(client, db):  # db: it lists hospital sign-ins
    assert "csrfmiddlewaretoken" in client.get(reverse(LOGIN)).content.decode()
