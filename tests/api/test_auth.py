"""API authentication: admin-issued tokens, revocation, session auth for the browser."""

from __future__ import annotations

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from tests.factories import PASSWORD


def test_request_without_credentials_is_401_json():
    response = APIClient().get("/api/v1/patients/")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_wrong_token_is_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert client.get("/api/v1/patients/").status_code == 401


def test_token_of_deactivated_account_is_refused(api, staff):
    staff.is_active = False
    staff.save()

    assert api.get("/api/v1/patients/").status_code == 401


def test_browser_session_works_without_a_token(client, staff, patient):
    client.login(email=staff.email, password=PASSWORD)

    response = client.get("/api/v1/patients/")

    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_admin_issues_token_and_sees_it_once(client, clinic_admin, staff):
    client.login(email=clinic_admin.email, password=PASSWORD)

    response = client.post(f"/clinic/api-tokens/{staff.pk}/issue/")

    token = Token.objects.get(user=staff)
    assert response.status_code == 200
    assert token.key in response.content.decode()
    assert AuditEvent.objects.filter(action="api_token.issue", user=clinic_admin).exists()
    page = client.get("/clinic/api-tokens/").content.decode()
    assert token.key not in page
    assert staff.email in page


def test_issued_token_authenticates_and_revoked_one_does_not(client, clinic_admin, staff):
    client.login(email=clinic_admin.email, password=PASSWORD)
    client.post(f"/clinic/api-tokens/{staff.pk}/issue/")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get(user=staff).key}")
    assert api.get("/api/v1/patients/").status_code == 200

    client.post(f"/clinic/api-tokens/{staff.pk}/revoke/")

    assert api.get("/api/v1/patients/").status_code == 401
    assert AuditEvent.objects.filter(action="api_token.revoke").exists()


def test_issuing_again_replaces_the_old_token(client, clinic_admin, staff):
    client.login(email=clinic_admin.email, password=PASSWORD)
    client.post(f"/clinic/api-tokens/{staff.pk}/issue/")
    old = Token.objects.get(user=staff).key

    client.post(f"/clinic/api-tokens/{staff.pk}/issue/")

    assert Token.objects.get(user=staff).key != old
    assert Token.objects.filter(user=staff).count() == 1


def test_staff_cannot_open_or_use_the_token_page(client, staff, doctor):
    client.login(email=staff.email, password=PASSWORD)

    assert client.get("/clinic/api-tokens/").status_code == 403
    assert client.post(f"/clinic/api-tokens/{doctor.pk}/issue/").status_code == 403
    assert not Token.objects.exists()


def test_admin_cannot_issue_token_for_other_clinics_user(client, clinic_admin, other_staff):
    client.login(email=clinic_admin.email, password=PASSWORD)

    assert client.post(f"/clinic/api-tokens/{other_staff.pk}/issue/").status_code == 404
    assert not Token.objects.exists()
