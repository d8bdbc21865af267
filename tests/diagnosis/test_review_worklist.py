"""The doctor's worklist: unsigned finished analyses, high risk first, then oldest first."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from diagnosis.models import Analysis
from diagnosis.selectors.review import worklist
from tests import factories


def _analysis(lesion, *, tier: str, hours_ago: int, **extra) -> Analysis:
    analysis = factories.DoneAnalysisFactory(
        image=factories.DermoscopicImageFactory(lesion=lesion), risk_tier=tier, **extra
    )
    # queued_at is auto_now_add: set the age afterwards.
    queued = timezone.now() - datetime.timedelta(hours=hours_ago)
    Analysis.objects.filter(pk=analysis.pk).update(queued_at=queued)
    return analysis


def test_worklist_orders_high_risk_first_then_oldest_first(doctor, lesion):
    low_old = _analysis(lesion, tier="low", hours_ago=50)
    high_new = _analysis(lesion, tier="high", hours_ago=1)
    moderate = _analysis(lesion, tier="moderate", hours_ago=5)
    high_old = _analysis(lesion, tier="high", hours_ago=30)

    ids = [analysis.pk for analysis in worklist(user=doctor)]

    assert ids == [high_old.pk, high_new.pk, moderate.pk, low_old.pk]


def test_worklist_leaves_out_signed_unfinished_and_other_clinics(doctor, lesion, other_clinic):
    waiting = _analysis(lesion, tier="low", hours_ago=2)
    drafted = _analysis(lesion, tier="low", hours_ago=3)
    factories.ReviewFactory(analysis=drafted, author=doctor)
    signed = _analysis(lesion, tier="high", hours_ago=2)
    factories.ReviewFactory(
        analysis=signed, author=doctor, signed_at=timezone.now(), signed_by_name="Dr A"
    )
    factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
    factories.AnalysisFactory(
        image=factories.DermoscopicImageFactory(lesion=lesion), status="failed"
    )
    elsewhere = factories.LesionFactory(patient=factories.PatientFactory(clinic=other_clinic))
    _analysis(elsewhere, tier="high", hours_ago=100)

    ids = [analysis.pk for analysis in worklist(user=doctor)]

    assert ids == [drafted.pk, waiting.pk]  # a draft is not a sign-off: it stays on the list


def test_worklist_runs_a_fixed_number_of_queries(doctor, lesion):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            for analysis in worklist(user=doctor):
                analysis.image.lesion.patient.full_name  # noqa: B018
                [draft.author for draft in analysis.drafts]
        return len(queries)

    _analysis(lesion, tier="high", hours_ago=1)
    few = count()
    for hours in range(2, 8):
        analysis = _analysis(lesion, tier="low", hours_ago=hours)
        factories.ReviewFactory(analysis=analysis, author=doctor)

    assert count() == few == 2


def test_worklist_page_for_doctors_not_for_staff(client, doctor, staff, lesion):
    analysis = _analysis(lesion, tier="high", hours_ago=1)

    client.force_login(staff)
    assert client.get(reverse("diagnosis:worklist")).status_code == 403

    client.force_login(doctor)
    response = client.get(reverse("diagnosis:worklist"))
    body = response.content.decode()
    assert response.status_code == 200
    assert reverse("diagnosis:review_edit", args=[analysis.pk]) in body
    assert lesion.patient.mrn in body
    assert "Melanoma" in body


@pytest.mark.parametrize("tier", ["high"])
def test_high_risk_dashboard_count_drops_once_signed(doctor, lesion, tier):
    from diagnosis.selectors import high_risk_awaiting_review

    analysis = _analysis(lesion, tier=tier, hours_ago=1)
    assert list(high_risk_awaiting_review(user=doctor)) == [analysis]

    factories.ReviewFactory(
        analysis=analysis, author=doctor, signed_at=timezone.now(), signed_by_name="Dr A"
    )

    assert list(high_risk_awaiting_review(user=doctor)) == []
