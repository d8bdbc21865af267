"""The audit trail's list in the Django admin runs a fixed number of queries however long the
clinic's trail is."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.audit import audit_record
from tests import factories
from tests.query_counts import queries_of

# The query string and the count, pinned (see tests/diagnosis/test_query_counts.py).
LISTS = {"": 14, "action=patient.view": 14, "patient={patient}": 14}


def _events(clinic, count: int) -> list:
    """`count` patients of the clinic, each looked at by a different person."""
    patients = []
    for _ in range(count):
        patient = factories.PatientFactory(clinic=clinic)
        audit_record(action="patient.view", user=factories.UserFactory(clinic=clinic), obj=patient)
        audit_record(
            action="report.download", user=factories.DoctorFactory(clinic=clinic), obj=patient
        )
        patients.append(patient)
    return patients


@pytest.mark.parametrize("query", list(LISTS))
def test_clinic_admins_audit_list_runs_the_same_queries_for_a_short_trail_as_a_long_one(
    client, clinic_admin, clinic, other_clinic, sign_in_with_mfa, query, django_assert_num_queries
):
    sign_in_with_mfa(clinic_admin)  # the admin admits no one without an authenticator code
    [patient] = _events(clinic, 1)
    _events(other_clinic, 2)
    url = reverse("admin:accounts_auditevent_changelist") + "?" + query.format(patient=patient.pk)
    few = queries_of(client, url)
    _events(clinic, 8)
    with django_assert_num_queries(LISTS[query]):
        response = client.get(url)
    assert few == LISTS[query]
    assert response.context["cl"].result_count >= 1
