"""The weekly drift watch: a clinic's week of results against the served version's validation
figures, flagged on the clinic admin's dashboard when something shifted."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from diagnosis import services
from diagnosis.models import DriftReport
from ml.drift import MIN_ANALYSES, expected, shifts
from tests import factories
from tests.diagnosis import model_dirs

NOW = timezone.make_aware(datetime.datetime(2026, 11, 30, 6, 0))
CARD = {  # the parts of a v2 card the drift watch reads
    "validation": {"n": 700, "melanoma": {"n_melanoma": 70}},
    "triage": {
        "report_half": {
            "by_class": {
                "mel": {"routine": 0, "soon": 40, "urgent": 30},
                "nv": {"routine": 500, "soon": 110, "urgent": 20},
            }
        }
    },
}


def test_expected_figures_come_from_the_card_and_the_gate():
    figures = expected(CARD, {"measured": {"report_half_accepted": {"share": 0.99}}})

    assert figures["triage"] == {"routine": 0.7143, "soon": 0.2143, "urgent": 0.0714}
    assert figures["mean_melanoma_probability"] == 0.1
    assert figures["gate_refused"] == 0.01


def test_shifts_name_each_figure_that_moved_and_only_with_enough_analyses():
    then = {
        "triage": {"routine": 0.7, "soon": 0.2, "urgent": 0.1},
        "gate_refused": 0.01,
        "mean_melanoma_probability": 0.1,
    }
    seen = {
        "n": MIN_ANALYSES,
        "triage": {"routine": 0.4, "soon": 0.3, "urgent": 0.3},
        "gate_refused": 0.2,
        "mean_melanoma_probability": 0.12,
    }

    found = shifts(seen, then)

    assert found == [
        "Routine results were 40% of the week's analyses; 70% on validation.",
        "Urgent results were 30% of the week's analyses; 10% on validation.",
        "The image gate refused 20% of images; it refused 1.0% of validation dermoscopy.",
    ]
    assert shifts({**seen, "n": MIN_ANALYSES - 1}, then) == []


@pytest.fixture
def week(clinic):
    """A clinic's week: 30 results of 'served-v2', all urgent, and 10 refused images."""
    factories.ModelVersionFactory(
        version="served-v2",
        status="active",
        card=CARD,
        gate_measured={"report_half_accepted": {"n": 700, "share": 0.99}},
    )
    lesion = factories.LesionFactory(patient__clinic=clinic)
    finished = NOW - datetime.timedelta(days=2)
    for _ in range(30):
        factories.DoneAnalysisFactory(
            image__lesion=lesion,
            model_version="served-v2",
            triage_level="urgent",
            melanoma_probability=0.7,
            finished_at=finished,
        )
    for _ in range(10):
        factories.NotAnalysedFactory(
            image__lesion=lesion, model_version="served-v2", finished_at=finished
        )
    # Outside the week, and of a version the registry does not know: not counted.
    factories.DoneAnalysisFactory(
        image__lesion=lesion, model_version="served-v2", finished_at=NOW - datetime.timedelta(9)
    )
    factories.DoneAnalysisFactory(image__lesion=lesion, model_version="unknown-v0")
    return clinic


def test_the_weekly_watch_flags_a_shift_for_the_clinic(week):
    assert services.drift_reports_compute(now=NOW) == 1
    assert services.drift_reports_compute(now=NOW) == 0  # the week is done already

    report = DriftReport.objects.get()
    assert (report.clinic, report.model_version, report.n_analyses) == (week, "served-v2", 40)
    assert report.observed["triage"] == {"routine": 0.0, "soon": 0.0, "urgent": 1.0}
    assert report.observed["gate_refused"] == 0.25
    assert report.flagged
    assert "Urgent results were 100% of the week's analyses; 7% on validation." in report.shifts
    assert any("mean melanoma probability was 70%" in shift for shift in report.shifts)
    assert "The image gate refused 25% of images; it refused 1.0% of validation dermoscopy." in (
        report.shifts
    )


def test_the_admins_dashboard_shows_the_flag_and_staff_do_not_see_it(
    week, client, clinic_admin, staff
):
    services.drift_reports_compute(now=NOW)

    client.force_login(clinic_admin)
    page = client.get(reverse("diagnosis:dashboard")).content.decode()
    assert 'id="tile-drift"' in page and "Model drift" in page
    assert "Urgent results were 100%" in page
    client.force_login(staff)
    assert 'id="tile-drift"' not in client.get(reverse("diagnosis:dashboard")).content.decode()


def test_the_shipped_cards_give_expected_figures():
    import json

    for version in (model_dirs.V1, model_dirs.V2):
        card = json.loads((model_dirs.shipped_dir(version) / "card.json").read_text())
        triage = expected(card)["triage"]
        assert sum(triage.values()) == pytest.approx(1.0, abs=1e-3)
