"""Per-user throttling: a client over its rate gets 429 with a clear message; others do not."""

from __future__ import annotations

import pytest
from rest_framework.throttling import UserRateThrottle

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
