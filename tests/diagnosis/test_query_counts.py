"""The diagnosis pages run a fixed number of queries however many records the clinic holds."""

from __future__ import annotations

import pytest
from django.urls import reverse

from diagnosis.models import Analysis
from diagnosis.selectors import queue_positions
from tests import factories
from tests.query_counts import add_images, add_patients, queries_of

# (page, query string): the count each runs, pinned. A change here is a change in how the page
# reads the database: check it stays flat as rows are added before updating the number.
PAGES = {
    ("diagnosis:dashboard", ""): 15,
    ("diagnosis:dashboard_live", ""): 9,
    ("diagnosis:worklist", ""): 8,
    ("diagnosis:worklist", "show=high-risk"): 8,
    ("diagnosis:analysis_list", ""): 6,
    ("diagnosis:analysis_list", "show=queued"): 6,
    ("diagnosis:referral_list", ""): 7,
}


@pytest.fixture
def doctor_client(client, doctor):
    client.force_login(doctor)
    return client


@pytest.mark.parametrize(("page", "query"), list(PAGES))
def test_page_runs_the_same_queries_for_one_patient_as_for_many(
    doctor_client, doctor, clinic, page, query, django_assert_num_queries
):
    url = reverse(page) + (f"?{query}" if query else "")
    add_patients(clinic, doctor, count=1)
    few = queries_of(doctor_client, url)
    add_patients(clinic, doctor, count=4)
    queries_of(doctor_client, url)  # warm-up: names the new patients on the audit trail
    with django_assert_num_queries(PAGES[page, query]):
        doctor_client.get(url)
    assert few == PAGES[page, query]


def test_lesion_page_runs_the_same_queries_for_two_images_as_for_ten(
    doctor_client, doctor, clinic, django_assert_num_queries
):
    [lesion] = add_patients(clinic, doctor, count=1)
    url = reverse("diagnosis:lesion_detail", args=[lesion.pk])
    few = queries_of(doctor_client, url)
    add_images(lesion, doctor, count=4)
    with django_assert_num_queries(11):
        doctor_client.get(url)
    assert few == 11


def test_patient_page_runs_the_same_queries_for_one_lesion_as_for_five(
    doctor_client, doctor, clinic, django_assert_num_queries
):
    [lesion] = add_patients(clinic, doctor, count=1)
    url = reverse("patients:detail", args=[lesion.patient_id])
    few = queries_of(doctor_client, url)
    for _ in range(4):
        add_images(factories.LesionFactory(patient=lesion.patient), doctor, count=1)
    with django_assert_num_queries(8):
        doctor_client.get(url)
    assert few == 8


def test_queue_positions_count_every_clinics_earlier_uploads_in_one_query(
    doctor, clinic, other_clinic, django_assert_num_queries
):
    mine = [factories.AnalysisFactory(image__lesion__patient__clinic=clinic) for _ in range(3)]
    factories.AnalysisFactory(image__lesion__patient__clinic=other_clinic)  # after mine
    mine.append(factories.AnalysisFactory(image__lesion__patient__clinic=clinic))
    done = factories.DoneAnalysisFactory(image__lesion__patient__clinic=clinic)
    waiting = list(Analysis.objects.filter(pk__in=[a.pk for a in [*mine, done]]))

    with django_assert_num_queries(1):
        positions = queue_positions(waiting)

    assert [positions.get(a.pk) for a in [*mine, done]] == [1, 2, 3, 5, None]
