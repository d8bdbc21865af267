"""A review's and a histology result's date rules hold for every writer (issue 13, item 4):
the page's form and the service (which the API and commands call) give the same answer, from
the one place the rules are written."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from diagnosis.models import Histopathology, Review
from diagnosis.services.histopathology import histopathology_record
from diagnosis.services.review import review_save
from tests import factories

TODAY = timezone.localdate()


@pytest.fixture
def analysis(lesion):
    return factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))


@pytest.mark.parametrize(
    ("follow_up", "words"),
    [
        (TODAY, "The follow-up date must be in the future."),
        (TODAY - datetime.timedelta(days=30), "The follow-up date must be in the future."),
        (None, "Monitoring needs a follow-up date."),
    ],
    ids=["today", "last-month", "none"],
)
def test_follow_up_date_in_the_future_for_page_and_service(
    client, doctor, analysis, follow_up, words
):
    client.force_login(doctor)
    page = client.post(
        reverse("diagnosis:review_edit", args=[analysis.pk]),
        {
            "agrees_with_ai": "yes",
            "diagnosis": "mel",
            "management": "monitor",
            "follow_up_on": follow_up.isoformat() if follow_up else "",
            "action": "save",
        },
    )
    with pytest.raises(ValidationError) as refused:
        review_save(
            actor=doctor,
            analysis=analysis,
            agrees_with_ai=True,
            diagnosis="mel",
            management="monitor",
            follow_up_on=follow_up,
        )

    assert page.context["form"].errors["follow_up_on"] == [words]
    assert refused.value.message_dict["follow_up_on"] == [words]
    assert not Review.objects.exists()


@pytest.mark.parametrize(
    ("reported_on", "words"),
    [
        (TODAY + datetime.timedelta(days=1), "cannot be dated in the future"),
        (datetime.date(1969, 12, 31), "cannot be dated before the patient's birth"),
    ],
    ids=["tomorrow", "before-birth"],
)
def test_histology_report_date_is_plausible(client, doctor, lesion, reported_on, words):
    lesion.patient.date_of_birth = datetime.date(1970, 5, 17)
    lesion.patient.save()
    client.force_login(doctor)
    page = client.post(
        reverse("diagnosis:histopathology_edit", args=[lesion.pk]),
        {"diagnosis": "mel", "reported_on": reported_on.isoformat(), "lab_reference": "H-1"},
    )
    with pytest.raises(ValidationError) as refused:
        histopathology_record(
            actor=doctor,
            lesion=lesion,
            diagnosis="mel",
            reported_on=reported_on,
            lab_reference="H-1",
        )

    assert page.status_code == 400
    assert words in " ".join(page.context["form"].errors["reported_on"])
    assert words in refused.value.message_dict["reported_on"][0]
    assert not Histopathology.objects.exists()
