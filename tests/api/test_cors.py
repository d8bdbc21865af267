"""CORS: only origins on the allow-list may call the API from a browser."""

from __future__ import annotations

import pytest

ALLOWED = "https://app.vienna-skin.example"


@pytest.fixture(autouse=True)
def _allow_list(settings):
    settings.CORS_ALLOWED_ORIGINS = [ALLOWED]


def test_allowed_origin_gets_cors_header(api):
    response = api.get("/api/v1/patients/", HTTP_ORIGIN=ALLOWED)

    assert response["Access-Control-Allow-Origin"] == ALLOWED


def test_other_origin_gets_no_cors_header(api):
    response = api.get("/api/v1/patients/", HTTP_ORIGIN="https://evil.example")

    assert "Access-Control-Allow-Origin" not in response


def test_preflight_from_allowed_origin_permits_the_token_header(client):
    response = client.options(
        "/api/v1/patients/",
        HTTP_ORIGIN=ALLOWED,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ALLOWED
    assert "authorization" in response["Access-Control-Allow-Headers"]


def test_portal_pages_get_no_cors_header(client, db):  # db: login lists hospital sign-ins
    response = client.get("/accounts/login/", HTTP_ORIGIN=ALLOWED)

    assert "Access-Control-Allow-Origin" not in response
