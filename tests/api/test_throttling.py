"""Per-user throttling: a client over its rate gets 429 with a clear message; others do not."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from tests.api.conftest import token_client


@pytest.fixture
def three_per_minute(monkeypatch):
    # The rate is read from settings when DRF loads; tests set the class's table directly.
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/minute"})


def test_fourth_request_in_a_minute_is_429(api, three_per_minute):
    statuses = [api.get("/api/v1/patients/").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]


def test_throttled_answer_says_when_to_retry(api, three_per_minute):
    for _ in range(3):
        api.get("/api/v1/patients/")

    response = api.get("/api/v1/patients/")

    assert response.json()["code"] == "throttled"
    assert "try again in" in response.json()["message"]
    assert int(response["Retry-After"]) > 0


def test_one_users_limit_does_not_throttle_another(api, doctor, three_per_minute):
    for _ in range(4):
        api.get("/api/v1/patients/")

    assert token_client(doctor).get("/api/v1/patients/").status_code == 200


@pytest.fixture
def three_anonymous_per_minute(monkeypatch):
    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "3/minute"})


def test_a_forged_forwarded_for_does_not_escape_the_anonymous_throttle(
    db, three_anonymous_per_minute
):
    # DRF alone keys anonymous callers by the whole X-Forwarded-For a client writes (issue 11).
    client = APIClient()
    statuses = [
        client.get("/api/schema/", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(4)
    ]

    assert statuses == [200, 200, 200, 429]
