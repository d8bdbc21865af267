"""Every list endpoint of the API runs a fixed number of queries however many records the
clinic holds (an integration pages through all of them)."""

from __future__ import annotations

import pytest

from tests.api.conftest import token_client
from tests.query_counts import add_patients

# The endpoint with its query string and the count, pinned (see
# tests/diagnosis/test_query_counts.py).
ENDPOINTS = {
    "/api/v1/patients/": 4,
    "/api/v1/patients/?search=Huber": 4,
    "/api/v1/lesions/": 4,
    "/api/v1/analyses/": 4,
    "/api/v1/analyses/?status=done": 4,
    "/api/v1/reviews/": 5,
    "/api/v1/referrals/": 4,
    "/api/v1/referrals/?status=open": 4,
}


def _queries(client, url: str, django_assert_num_queries, pinned: int) -> None:
    assert client.get(url).status_code == 200  # warm-up: the token's first use is recorded
    with django_assert_num_queries(pinned):
        response = client.get(url)
    assert response.status_code == 200 and response.json()["count"] >= 1


@pytest.mark.parametrize("url", list(ENDPOINTS))
def test_list_endpoint_runs_the_same_queries_for_one_patient_as_for_many(
    doctor, clinic, url, django_assert_num_queries
):
    client = token_client(doctor)
    add_patients(clinic, doctor, count=1)
    _queries(client, url, django_assert_num_queries, ENDPOINTS[url])
    add_patients(clinic, doctor, count=4)
    _queries(client, url, django_assert_num_queries, ENDPOINTS[url])
