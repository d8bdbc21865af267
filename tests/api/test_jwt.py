"""JWTs for apps that act for a person (issue 18, item 2): sign-in with the same rules as the
log-in page (password, lock-out, authenticator code), short-lived access tokens, rotating
refresh tokens whose reuse revokes the whole sign-in, and revocation on deactivation, password
change and role change. Knox tokens stay for server-to-server integrations."""

from __future__ import annotations

import datetime

import pytest
import yaml
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import AuditEvent, RefreshTokenFamily, Role
from accounts.services.jwt_tokens import PortalRefreshToken
from accounts.services.users import user_deactivate, user_set_role
from melanoma_portal.settings import base
from tests import factories
from tests.api.conftest import token_client

OBTAIN = "/api/v1/auth/token/"
REFRESH = "/api/v1/auth/token/refresh/"
SIGN_OUT = "/api/v1/auth/token/sign-out/"
PATIENTS = "/api/v1/patients/"


def obtain(user, *, code: str = "", password: str = factories.PASSWORD):
    data = {"email": user.email, "password": password}
    if code:
        data["code"] = code
    return APIClient().post(OBTAIN, data, format="json")


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def refresh(token: str):
    return APIClient().post(REFRESH, {"refresh": token}, format="json")


@pytest.fixture
def mfa_roles(settings):
    settings.MFA_REQUIRED_ROLES = ["admin", "doctor"]


@pytest.fixture
def signed_in(staff):
    """A staff member's app, signed in: (user, token pair)."""
    response = obtain(staff)
    assert response.status_code == 200, response.json()
    return staff, response.json()


# --- sign-in ----------------------------------------------------------------------------------


def test_a_signed_in_app_reads_its_clinic_with_the_access_token(signed_in, patient):
    _, pair = signed_in
    assert pair["token_type"] == "Bearer"
    response = bearer(pair["access"]).get(PATIENTS)
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [patient.pk]


def test_access_tokens_last_minutes_and_refresh_tokens_days(signed_in):
    _, pair = signed_in
    access = AccessToken(pair["access"])
    refresh_token = PortalRefreshToken(pair["refresh"])
    assert access["exp"] - access["iat"] == base.JWT_ACCESS_MINUTES * 60 <= 15 * 60
    assert refresh_token["exp"] - refresh_token["iat"] == base.JWT_REFRESH_DAYS * 86400


def test_wrong_password_is_refused_in_plain_words_and_audited(staff):
    response = obtain(staff, password="not-the-password")
    assert response.status_code == 401
    assert response.json()["message"] == "Wrong e-mail address or password."
    assert AuditEvent.objects.filter(action="login.failed", user=staff).exists()
    assert not RefreshTokenFamily.objects.exists()


def test_an_account_with_an_authenticator_needs_its_code(doctor, patient):
    secret = factories.activate_totp(doctor)

    without = obtain(doctor)
    wrong = obtain(doctor, code="000000")
    right = obtain(doctor, code=factories.totp_code(secret))

    assert without.status_code == 401 and without.json()["code"] == "mfa_code_required"
    assert "authenticator" in without.json()["message"]
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert bearer(right.json()["access"]).get(PATIENTS).status_code == 200
    issued = AuditEvent.objects.get(action="jwt.issue", user=doctor)
    assert issued.detail["second_factor"] == "totp"


def test_a_role_that_requires_mfa_gets_no_token_without_an_authenticator(mfa_roles, doctor):
    response = obtain(doctor)
    assert response.status_code == 403
    assert response.json()["code"] == "mfa_required"
    assert not RefreshTokenFamily.objects.exists()


def test_an_access_token_stops_working_when_the_authenticator_is_removed(mfa_roles, doctor):
    from allauth.mfa.models import Authenticator

    secret = factories.activate_totp(doctor)
    pair = obtain(doctor, code=factories.totp_code(secret)).json()
    Authenticator.objects.filter(user=doctor).delete()

    assert bearer(pair["access"]).get(PATIENTS).status_code == 403
    assert refresh(pair["refresh"]).status_code == 403


def test_api_sign_in_counts_against_the_account_lock_out(settings, staff):
    settings.ACCOUNT_RATE_LIMITS = base.ACCOUNT_RATE_LIMITS
    for _ in range(5):
        assert obtain(staff, password="guess").status_code == 401

    response = obtain(staff)  # the right password, too late

    assert response.status_code == 429
    assert "Too many failed sign-ins for this account" in response.json()["message"]


# --- expiry, rotation, reuse --------------------------------------------------------------------


def _expired(token_class, raw: str) -> str:
    """The same token, signed by the portal, with an expiry in the past."""
    token = token_class(raw)
    token.set_exp(lifetime=-datetime.timedelta(seconds=30))
    return str(token)


def test_an_expired_access_token_is_refused_saying_how_to_renew_it(signed_in):
    _, pair = signed_in
    response = bearer(_expired(AccessToken, pair["access"])).get(PATIENTS)
    assert response.status_code == 401
    message = response.json()["message"]
    assert message.startswith("This access token expired at ")
    assert "/api/v1/auth/token/refresh/" in message


def test_an_expired_refresh_token_means_signing_in_again(signed_in):
    _, pair = signed_in
    response = refresh(_expired(PortalRefreshToken, pair["refresh"]))
    assert response.status_code == 401
    assert response.json()["message"] == "This refresh token has expired: sign in again."


def test_a_refresh_token_is_not_an_access_token(signed_in):
    _, pair = signed_in
    response = bearer(pair["refresh"]).get(PATIENTS)
    assert response.status_code == 401
    assert "not the refresh token" in response.json()["message"]


def test_refresh_rotates_the_refresh_token(signed_in):
    _, first = signed_in
    second = refresh(first["refresh"])
    assert second.status_code == 200
    second = second.json()
    assert second["refresh"] != first["refresh"]
    assert bearer(second["access"]).get(PATIENTS).status_code == 200
    third = refresh(second["refresh"])
    assert third.status_code == 200
    # One sign-in, whatever the number of rotations.
    families = {PortalRefreshToken(t["refresh"])["fam"] for t in (first, second, third.json())}
    assert len(families) == 1


def test_reusing_a_rotated_refresh_token_revokes_the_whole_sign_in(signed_in):
    user, first = signed_in
    second = refresh(first["refresh"]).json()

    reuse = refresh(first["refresh"])  # a stolen copy of the first, or the first replayed

    assert reuse.status_code == 401
    assert reuse.json()["code"] == "token_reused"
    assert "every token of this sign-in is now revoked" in reuse.json()["message"]
    # The legitimate holder's newer tokens are revoked with it, access token included.
    after = refresh(second["refresh"])
    assert after.status_code == 401
    assert "used twice" in after.json()["message"]
    denied = bearer(second["access"]).get(PATIENTS)
    assert denied.status_code == 401
    assert "used twice" in denied.json()["message"]
    event = AuditEvent.objects.get(action="jwt.reuse")
    assert event.user_id == user.pk
    assert event.detail["family"] == PortalRefreshToken(first["refresh"])["fam"]


def test_reuse_revokes_only_that_sign_in(staff):
    phone = obtain(staff).json()
    tablet = obtain(staff).json()
    refresh(phone["refresh"])
    refresh(phone["refresh"])  # reuse on the phone's sign-in

    assert bearer(tablet["access"]).get(PATIENTS).status_code == 200
    assert refresh(tablet["refresh"]).status_code == 200


def test_a_tampered_refresh_token_is_refused(signed_in):
    _, pair = signed_in
    header, payload, signature = pair["refresh"].split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    response = refresh(forged)
    assert response.status_code == 401
    assert response.json()["message"] == (
        "This is not a valid refresh token of this portal: sign in again."
    )


def test_sign_out_ends_the_sign_in(signed_in):
    _, pair = signed_in
    signed_out = APIClient().post(SIGN_OUT, {"refresh": pair["refresh"]}, format="json")
    assert signed_out.status_code == 204
    assert bearer(pair["access"]).get(PATIENTS).status_code == 401
    assert refresh(pair["refresh"]).status_code == 401


# --- revocation ----------------------------------------------------------------------------------


def test_deactivation_revokes_at_once(signed_in, clinic_admin, staff):
    _, pair = signed_in
    user_deactivate(actor=clinic_admin, user=staff)

    denied = bearer(pair["access"]).get(PATIENTS)
    assert denied.status_code == 401
    assert "deactivated" in denied.json()["message"]
    assert refresh(pair["refresh"]).status_code == 401
    event = AuditEvent.objects.get(action="jwt.revoke")
    assert event.detail["reason"] == "deactivated" and event.object_id == str(staff.pk)


def test_a_password_change_revokes(signed_in, staff):
    _, pair = signed_in
    staff.set_password("a-new-long-password-123")
    staff.save()

    denied = bearer(pair["access"]).get(PATIENTS)
    assert denied.status_code == 401
    assert "password was changed" in denied.json()["message"]
    assert refresh(pair["refresh"]).status_code == 401


def test_a_role_change_revokes(signed_in, clinic_admin, staff):
    _, pair = signed_in
    user_set_role(actor=clinic_admin, user=staff, role=Role.DOCTOR)

    denied = bearer(pair["access"]).get(PATIENTS)
    assert denied.status_code == 401
    assert "role or clinic changed" in denied.json()["message"]


def test_an_unrelated_save_of_the_account_revokes_nothing(signed_in, staff):
    _, pair = signed_in
    staff.full_name = "Renamed"
    staff.save()
    assert bearer(pair["access"]).get(PATIENTS).status_code == 200


def test_knox_tokens_still_work_for_server_to_server(staff, patient):
    assert token_client(staff).get(PATIENTS).status_code == 200


def test_the_openapi_schema_documents_both_schemes(client, clinic_admin):
    client.force_login(clinic_admin)
    schema = yaml.safe_load(client.get(reverse("api:schema")).content)
    schemes = schema["components"]["securitySchemes"]
    assert schemes["tokenAuth"]["type"] == "apiKey"
    assert schemes["jwtAuth"] == {**schemes["jwtAuth"], "type": "http", "scheme": "bearer"}
    assert {OBTAIN, REFRESH, SIGN_OUT} <= set(schema["paths"])
    patients = schema["paths"][PATIENTS]["get"]["security"]
    assert {"jwtAuth": []} in patients and {"tokenAuth": []} in patients
