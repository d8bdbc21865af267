"""Fixtures for the API tests: token-authenticated clients and finished analyses."""

from __future__ import annotations

import datetime

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from diagnosis.models import Analysis, AnalysisStatus
from tests import factories

# A plausible calibrated result: sums to 1, melanoma on top.
PROBABILITIES = {
    "akiec": 0.02,
    "bcc": 0.03,
    "bkl": 0.05,
    "df": 0.01,
    "mel": 0.62,
    "nv": 0.25,
    "vasc": 0.02,
}


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    # Throttle counters live in the cache; one test's requests must not count against the next.
    cache.clear()
    yield
    cache.clear()


def token_client(user) -> APIClient:
    """A client sending a fresh token of `user` (valid a day), as the mobile app does."""
    _, key = ApiToken.objects.create(user=user, expiry=datetime.timedelta(days=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def api(staff) -> APIClient:
    """A clinic staff member's client, with a token as the mobile app sends it."""
    return token_client(staff)


@pytest.fixture
def other_api(other_staff) -> APIClient:
    return token_client(other_staff)


@pytest.fixture
def image(lesion):
    return factories.DermoscopicImageFactory(lesion=lesion)


@pytest.fixture
def done_analysis(image) -> Analysis:
    now = timezone.now()
    return Analysis.objects.create(
        image=image,
        status=AnalysisStatus.DONE,
        started_at=now,
        finished_at=now,
        attempts=1,
        probabilities=PROBABILITIES,
        top_class="mel",
        melanoma_probability=0.62,
        risk_tier="high",
        model_version="effnet-test-1",
        timings_ms={"inference": 12.0},
    )


@pytest.fixture
def queued_analysis(image) -> Analysis:
    return Analysis.objects.create(image=image)
