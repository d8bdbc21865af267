"""The patient list and its search run a fixed number of queries however many patients the
clinic holds."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests import factories
from tests.query_counts import queries_of

# The query string and the count, pinned (see tests/diagnosis/test_query_counts.py).
LISTS = {"": 6, "q=Huber": 6, "q=Anna Huber": 6, "q=MRN": 6, "page=2": 6}


@pytest.mark.parametrize("query", list(LISTS))
def test_patient_list_runs_the_same_queries_for_few_patients_as_for_many(
    client, staff, clinic, query, django_assert_num_queries
):
    client.force_login(staff)
    url = f"{reverse('patients:list')}?{query}"
    factories.PatientFactory.create_batch(30, clinic=clinic)  # a second page to turn to
    few = queries_of(client, url)
    factories.PatientFactory.create_batch(40, clinic=clinic)
    with django_assert_num_queries(LISTS[query]):
        client.get(url)
    assert few == LISTS[query]
