"""The clinical triage on the portal: the result page's wording, the worklist's order and the
dashboard tile, with results from before triage keeping the melanoma risk tier they were given.
"""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from diagnosis import presentation
from diagnosis.models import Analysis
from diagnosis.selectors import awaiting_review, dashboard_counts, high_risk_awaiting_review
from diagnosis.selectors.review import worklist
from tests import factories


def _triaged(lesion, level: str, reason: str, *, hours_ago: int = 1, **extra) -> Analysis:
    analysis = factories.TriagedAnalysisFactory(
        image=factories.DermoscopicImageFactory(lesion=lesion),
        triage_level=level,
        triage_reason=reason,
        **extra,
    )
    Analysis.objects.filter(pk=analysis.pk).update(
        queued_at=timezone.now() - datetime.timedelta(hours=hours_ago)
    )
    return analysis


def _legacy(lesion, tier: str, *, hours_ago: int = 1) -> Analysis:
    """A result of a model without triage (v1): it has its melanoma risk tier only."""
    analysis = factories.DoneAnalysisFactory(
        image=factories.DermoscopicImageFactory(lesion=lesion), risk_tier=tier
    )
    Analysis.objects.filter(pk=analysis.pk).update(
        queued_at=timezone.now() - datetime.timedelta(hours=hours_ago)
    )
    return analysis


def test_result_page_shows_the_triage_with_its_reason_and_what_it_means(client, staff, lesion):
    analysis = _triaged(lesion, "soon", "BCC 96%")
    client.force_login(staff)

    html = client.get(reverse("diagnosis:analysis", args=[analysis.pk])).content.decode()

    assert 'id="triage-level">Soon<' in html
    assert 'id="triage-reason">BCC 96%<' in html
    assert presentation.TRIAGE["soon"].means in html.replace("&#x27;", "'")
    assert "What it does not mean:" in html
    assert 'id="risk-tier"' not in html  # triage replaces the melanoma-only tier
    assert "Low" not in html  # the BCC's melanoma tier is not shown as its risk


def test_routine_says_it_is_not_a_statement_that_the_lesion_is_benign(client, staff, lesion):
    analysis = _triaged(lesion, "routine", "", top_class="nv")
    client.force_login(staff)

    html = client.get(reverse("diagnosis:analysis", args=[analysis.pk])).content.decode()

    assert 'id="triage-level">Routine<' in html
    assert "no threshold reached" in html
    assert "Routine is not a statement that the lesion is benign" in html


def test_an_old_result_without_triage_still_shows_its_melanoma_risk_tier(client, staff, lesion):
    analysis = _legacy(lesion, "moderate")
    client.force_login(staff)

    html = client.get(reverse("diagnosis:analysis", args=[analysis.pk])).content.decode()

    assert 'id="risk-tier" class="tier-moderate">Moderate<' in html
    assert 'id="triage' not in html
    dashboard = client.get(reverse("diagnosis:dashboard")).content.decode()
    assert "Moderate risk" in dashboard


def test_every_level_has_wording_for_what_it_means_and_does_not():
    for level in ("urgent", "soon", "routine"):
        shown = presentation.triage_shown(level, "Melanoma 41%")
        assert shown.label == level.capitalize()
        assert shown.wording.means and shown.wording.does_not_mean
    assert presentation.triage_shown("soon", "BCC 96%").text == "Soon — BCC 96%"
    assert presentation.triage_shown("", "") is None


def test_worklist_puts_urgent_first_then_soon_then_routine_with_old_tiers_alongside(doctor, lesion):
    routine_old = _triaged(lesion, "routine", "", hours_ago=90)
    bcc = _triaged(lesion, "soon", "BCC 96%", hours_ago=10)  # melanoma tier "low"
    urgent_new = _triaged(lesion, "urgent", "Melanoma 72%", hours_ago=1)
    legacy_high = _legacy(lesion, "high", hours_ago=5)
    legacy_low = _legacy(lesion, "low", hours_ago=100)
    soon_new = _triaged(lesion, "soon", "Melanoma 9% (not excluded)", hours_ago=2)

    ids = [analysis.pk for analysis in worklist(user=doctor)]

    assert ids == [
        legacy_high.pk,
        urgent_new.pk,
        bcc.pk,
        soon_new.pk,
        legacy_low.pk,
        routine_old.pk,
    ]


def test_worklist_page_shows_the_triage_and_reason(client, doctor, lesion):
    _triaged(lesion, "soon", "BCC 96%")
    client.force_login(doctor)

    html = client.get(reverse("diagnosis:worklist")).content.decode()

    assert "<th>Triage</th>" in html
    assert "BCC 96%" in html and "Soon" in html


def test_dashboard_tile_counts_urgent_and_not_routine_awaiting_review(
    client, staff, doctor, lesion
):
    urgent = _triaged(lesion, "urgent", "Melanoma 72%")
    legacy_high = _legacy(lesion, "high")
    bcc = _triaged(lesion, "soon", "BCC 96%")
    _triaged(lesion, "routine", "")
    _legacy(lesion, "low")
    signed = _triaged(lesion, "urgent", "Melanoma 80%")
    factories.ReviewFactory(
        analysis=signed, author=doctor, signed_at=timezone.now(), signed_by_name="Dr A"
    )

    assert {a.pk for a in high_risk_awaiting_review(user=staff)} == {urgent.pk, legacy_high.pk}
    assert {a.pk for a in awaiting_review(user=staff, triage="not_routine")} == {
        urgent.pk,
        legacy_high.pk,
        bcc.pk,
    }
    counts = dashboard_counts(user=staff)
    assert counts["high_risk_awaiting_review"] == 2
    assert counts["not_routine_awaiting_review"] == 3
    client.force_login(staff)
    html = client.get(reverse("diagnosis:dashboard")).content.decode()
    assert "urgent awaiting review" in html


@pytest.mark.parametrize("selection", ["high", ""])
def test_awaiting_review_knows_only_its_selections(staff, selection):
    with pytest.raises(KeyError):
        awaiting_review(user=staff, triage=selection)
