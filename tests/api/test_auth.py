"""API authentication: admin-issued tokens (stored hashed, expiring, issued only to accounts
that satisfy two-factor authentication, last use recorded), revocation, the browser session,
and throttling of requests without valid credentials."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import AnonRateThrottle

from accounts.models import ApiToken, AuditEvent
from accounts.services import api_token_issue
from tests import factories
from tests.api.conftest import token_client
from tests.factories import PASSWORD

ISSUE_URL = "/clinic/api-tokens/{}/issue/"


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def issued_key(response) -> str:
    return response.context["new_token"].key


@pytest.fixture
def mfa_required(settings):
    settings.MFA_REQUIRED_ROLES = ["admin", "doctor"]


@pytest.fixture
def admin_client(client, clinic_admin):
    client.login(email=clinic_admin.email, password=PASSWORD)
    return client


def test_request_without_credentials_is_401_json():
    response = APIClient().get("/api/v1/patients/")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_wrong_token_is_401(db):
    assert client_with("mp_not-a-real-token").get("/api/v1/patients/").status_code == 401


def test_token_of_deactivated_account_is_refused(api, staff):
    staff.is_active = False
    staff.save()

    response = api.get("/api/v1/patients/")

    assert response.status_code == 401
    assert response.json()["message"] == "This account is deactivated."


def test_browser_session_works_without_a_token(client, staff, patient):
    client.login(email=staff.email, password=PASSWORD)

    response = client.get("/api/v1/patients/")

    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_admin_issues_token_and_sees_it_once(admin_client, clinic_admin, staff):
    response = admin_client.post(ISSUE_URL.format(staff.pk))

    key = issued_key(response)
    assert response.status_code == 200
    assert key in response.content.decode() and key.startswith("mp_")
    assert AuditEvent.objects.filter(action="api_token.issue", user=clinic_admin).exists()
    page = admin_client.get("/clinic/api-tokens/").content.decode()
    assert key not in page
    assert staff.email in page


def test_token_is_stored_only_as_a_hash(admin_client, staff):
    key = issued_key(admin_client.post(ISSUE_URL.format(staff.pk)))

    token = ApiToken.objects.get(user=staff)
    assert key not in (token.digest, token.token_key)
    assert len(token.digest) == 128  # SHA-512
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        assert key not in repr(cursor.fetchall())


def test_issued_token_authenticates_and_revoked_one_does_not(admin_client, staff):
    api = client_with(issued_key(admin_client.post(ISSUE_URL.format(staff.pk))))
    assert api.get("/api/v1/patients/").status_code == 200

    admin_client.post(f"/clinic/api-tokens/{staff.pk}/revoke/")

    assert api.get("/api/v1/patients/").status_code == 401
    assert AuditEvent.objects.filter(action="api_token.revoke").exists()


def test_issuing_again_replaces_the_old_token(admin_client, staff):
    old = client_with(issued_key(admin_client.post(ISSUE_URL.format(staff.pk))))

    admin_client.post(ISSUE_URL.format(staff.pk))

    assert ApiToken.objects.filter(user=staff).count() == 1
    assert old.get("/api/v1/patients/").status_code == 401


def test_staff_cannot_open_or_use_the_token_page(client, staff, doctor):
    client.login(email=staff.email, password=PASSWORD)

    assert client.get("/clinic/api-tokens/").status_code == 403
    assert client.post(ISSUE_URL.format(doctor.pk)).status_code == 403
    assert not ApiToken.objects.exists()


def test_admin_cannot_issue_token_for_other_clinics_user(admin_client, other_staff):
    assert admin_client.post(ISSUE_URL.format(other_staff.pk)).status_code == 404
    assert not ApiToken.objects.exists()


# --- expiry, chosen by the clinic admin --------------------------------------------------------


def test_token_expires_after_the_default_when_the_admin_chooses_nothing(
    admin_client, staff, settings
):
    admin_client.post(ISSUE_URL.format(staff.pk))

    token = ApiToken.objects.get(user=staff)
    expected = timezone.now() + datetime.timedelta(days=settings.API_TOKEN_DEFAULT_DAYS)
    assert abs((token.expiry - expected).total_seconds()) < 60


def test_admin_chooses_how_many_days_a_token_is_valid(admin_client, staff):
    admin_client.post(ISSUE_URL.format(staff.pk), {"days": "7"})

    token = ApiToken.objects.get(user=staff)
    assert abs((token.expiry - timezone.now() - datetime.timedelta(days=7)).total_seconds()) < 60
    assert AuditEvent.objects.get(action="api_token.issue").detail["days"] == 7


@pytest.mark.parametrize("days", ["0", "366", "-5"])
def test_a_validity_outside_the_bounds_is_refused_with_a_message(admin_client, staff, days):
    response = admin_client.post(ISSUE_URL.format(staff.pk), {"days": days}, follow=True)

    assert not ApiToken.objects.exists()
    assert "Choose between 1 and 365 days." in response.content.decode()


def test_expired_token_is_refused_and_says_so(staff):
    api = token_client(staff)
    ApiToken.objects.filter(user=staff).update(expiry=timezone.now() - datetime.timedelta(hours=1))

    response = api.get("/api/v1/patients/")

    assert response.status_code == 401
    assert response.json()["message"].startswith("This token expired on ")
    assert ApiToken.objects.filter(user=staff).exists()  # still listed for the admin


def test_last_use_is_recorded(api, staff):
    assert ApiToken.objects.get(user=staff).last_used_at is None

    api.get("/api/v1/patients/")

    last_used = ApiToken.objects.get(user=staff).last_used_at
    assert last_used is not None and timezone.now() - last_used < datetime.timedelta(minutes=1)


def test_token_page_shows_expiry_and_last_use(admin_client, staff):
    token_client(staff).get("/api/v1/patients/")

    page = admin_client.get("/clinic/api-tokens/").content.decode()

    assert "expires" in page and "last used" in page


def test_a_plain_text_token_from_before_hashing_is_refused_with_a_clear_message(db):
    response = client_with("9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b").get("/api/v1/patients/")

    assert response.status_code == 401
    assert "retired when the portal began storing tokens hashed" in response.json()["message"]


def test_migration_revokes_plain_text_tokens_and_records_each(staff):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("accounts.migrations.0005_apitoken")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp, "
            "user_id bigint NOT NULL)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token VALUES ('9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b', "
            "CURRENT_TIMESTAMP, %s)",
            [staff.pk],
        )

    migration.revoke_plain_text_tokens(apps, connection.schema_editor())

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM authtoken_token")
        assert cursor.fetchone()[0] == 0
        cursor.execute("DROP TABLE authtoken_token")
    event = AuditEvent.objects.get(action="api_token.revoke")
    assert event.object_id == str(staff.pk) and "hashed" in event.detail["reason"]


# --- two-factor authentication ------------------------------------------------------------------


def test_clinic_admin_without_the_required_mfa_gets_403_with_a_token_too(
    clinic_admin, mfa_required
):
    # Issue 11: 403 from the API with a session but 200 with a token.
    api = token_client(clinic_admin)  # issued before MFA was required, or before the rule

    response = api.get("/api/v1/patients/")

    assert response.status_code == 403
    assert response.json()["message"] == (
        "Two-factor authentication must be set up before using the API."
    )


def test_token_is_not_issued_to_an_account_without_the_required_mfa(
    client, clinic_admin, doctor, mfa_required, sign_in_with_mfa
):
    sign_in_with_mfa(clinic_admin)

    response = client.post(ISSUE_URL.format(doctor.pk), follow=True)

    assert not ApiToken.objects.filter(user=doctor).exists()
    assert (
        f"{doctor.email} must set up two-factor authentication before a token can be issued"
        in response.content.decode()
    )


def test_token_is_issued_once_the_account_has_an_authenticator(clinic_admin, doctor, mfa_required):
    factories.activate_totp(doctor)

    issued = api_token_issue(actor=clinic_admin, user_id=doctor.pk)

    assert client_with(issued.key).get("/api/v1/patients/").status_code == 200


def test_staff_needs_no_authenticator_for_a_token(clinic_admin, staff, mfa_required):
    issued = api_token_issue(actor=clinic_admin, user_id=staff.pk)
    assert client_with(issued.key).get("/api/v1/patients/").status_code == 200


# --- requests without valid credentials are throttled too ---------------------------------------


@pytest.fixture
def three_anonymous_per_minute(monkeypatch):
    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "3/minute"})


def test_guessing_tokens_is_throttled_429_before_401(db, three_anonymous_per_minute):
    # Issue 11: DRF throttles after authentication, so every wrong guess was a 401, none a 429.
    statuses = [
        client_with(f"mp_guess{n:012d}").get("/api/v1/patients/").status_code for n in range(5)
    ]

    assert statuses == [401, 401, 401, 429, 429]


def test_requests_without_any_credentials_are_throttled_and_say_when_to_retry(
    db, three_anonymous_per_minute
):
    client = APIClient()
    for _ in range(3):
        assert client.get("/api/v1/patients/").status_code == 401

    response = client.get("/api/v1/patients/")

    assert response.status_code == 429
    assert "try again in" in response.json()["message"]
    assert int(response["Retry-After"]) > 0


def test_a_throttled_address_does_not_stop_a_valid_token(api, three_anonymous_per_minute):
    guesser = client_with("mp_guess000000000000")
    for _ in range(4):
        guesser.get("/api/v1/patients/")

    assert api.get("/api/v1/patients/").status_code == 200


def test_the_token_page_is_reached_with_a_session_not_a_token(admin_client):
    assert admin_client.get(reverse("api_tokens:list")).status_code == 200
