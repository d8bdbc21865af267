"""Per-user throttling: a client over its rate gets 429 with a clear message; others do not."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from tests.api.conftest import token_client
from tests.factories import jpeg_bytes


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


# Issue 15: a clinic's integration uploading a backlog of 200 images while polling each result
# had 115 uploads refused, because the polls used up the same per-user budget.
@pytest.fixture
def small_scopes(monkeypatch):
    monkeypatch.setattr(
        UserRateThrottle,
        "THROTTLE_RATES",
        {"user": "3/minute", "upload": "5/minute", "status": "40/minute"},
    )


def _upload(client, lesion):
    return client.post(
        f"/api/v1/lesions/{lesion.pk}/images/",
        {
            "file": SimpleUploadedFile("lesion.jpg", jpeg_bytes(), content_type="image/jpeg"),
            "allow_duplicate": True,
        },
        format="multipart",
    )


def test_a_burst_of_uploads_each_polled_fits_within_the_limits(api, lesion, small_scopes):
    statuses = []
    for _ in range(5):
        accepted = _upload(api, lesion)
        statuses.append(accepted.status_code)
        statuses += [api.get(accepted.json()["status_url"]).status_code for _ in range(8)]

    assert statuses == [202, *[200] * 8] * 5


def test_uploads_past_their_scope_are_429_with_retry_after(api, lesion, small_scopes):
    for _ in range(5):
        assert _upload(api, lesion).status_code == 202

    refused = _upload(api, lesion)

    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert int(refused["Retry-After"]) > 0


def test_polls_do_not_use_up_the_upload_budget_or_the_general_one(api, lesion, small_scopes):
    status_url = _upload(api, lesion).json()["status_url"]
    for _ in range(30):
        assert api.get(status_url).status_code == 200

    assert [_upload(api, lesion).status_code for _ in range(4)] == [202] * 4
    assert [api.get("/api/v1/patients/").status_code for _ in range(3)] == [200] * 3


def test_uploads_do_not_use_up_the_general_budget(api, lesion, small_scopes):
    for _ in range(5):
        _upload(api, lesion)

    assert [api.get("/api/v1/patients/").status_code for _ in range(3)] == [200] * 3
