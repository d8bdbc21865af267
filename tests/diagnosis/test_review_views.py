"""The review pages: who may enter, what a bad form shows, and the panel on the result page."""

from __future__ import annotations

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from diagnosis.models import Review
from tests import factories


@pytest.fixture
def analysis(lesion):
    return factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))


def _url(analysis, name="diagnosis:review_edit"):
    return reverse(name, args=[analysis.pk])


def test_doctor_sees_image_heatmap_probabilities_and_tier(client, doctor, analysis):
    client.force_login(doctor)

    response = client.get(_url(analysis))

    body = response.content.decode()
    assert response.status_code == 200
    assert reverse("diagnosis:image", args=[analysis.image_id]) in body
    assert reverse("diagnosis:heatmap", args=[analysis.pk, "top"]) in body
    assert "<svg" in body and "71.0%" in body
    assert "High" in body
    assert AuditEvent.objects.filter(action="analysis.view", object_id=str(analysis.pk)).exists()


def test_staff_gets_403_on_the_review_page(client, staff, analysis):
    client.force_login(staff)

    assert client.get(_url(analysis)).status_code == 403
    response = client.post(
        _url(analysis),
        {"agrees_with_ai": "yes", "diagnosis": "mel", "management": "excise", "action": "sign"},
    )
    assert response.status_code == 403
    assert not Review.objects.exists()


def test_doctor_of_another_clinic_gets_404(client, other_clinic, analysis):
    client.force_login(factories.DoctorFactory(clinic=other_clinic))

    assert client.get(_url(analysis)).status_code == 404


def test_doctor_signs_through_the_form(client, doctor, analysis):
    client.force_login(doctor)

    response = client.post(
        _url(analysis),
        {
            "agrees_with_ai": "yes",
            "diagnosis": "mel",
            "management": "refer_urgently",
            "referral_to": "Plastic surgery, St Mary's",
            "notes": "Blue-white veil.",
            "action": "sign",
        },
    )

    assert response.status_code == 302
    review = Review.objects.get()
    assert review.is_signed and review.management == "refer_urgently"
    page = client.get(_url(analysis)).content.decode()
    assert "Signed by" in page and "Amend this review" in page
    assert 'id="review-form"' not in page


def test_missing_fields_are_named_and_typed_values_kept(client, doctor, analysis):
    client.force_login(doctor)

    response = client.post(
        _url(analysis),
        {"diagnosis": "other", "management": "monitor", "notes": "Irregular border, 7 mm."},
    )

    body = response.content.decode()
    assert response.status_code == 400
    assert "The review was not saved. Please correct:" in body
    assert "Say whether you agree with the AI." in body
    assert "Monitoring needs a follow-up date." in body
    assert "Name the diagnosis when choosing &#x27;Other&#x27;." in body
    assert "Irregular border, 7 mm." in body  # the notes survive
    assert re.search(r'<input[^>]*value="monitor"[^>]*checked', body)
    assert re.search(r'<option value="other" selected>', body)
    assert not Review.objects.exists()


def test_posting_to_a_signed_review_changes_nothing(client, doctor, analysis):
    review = factories.ReviewFactory(
        analysis=analysis, author=doctor, signed_at=timezone.now(), signed_by_name="Dr A"
    )
    client.force_login(doctor)

    response = client.post(
        _url(analysis),
        {"agrees_with_ai": "no", "diagnosis": "nv", "management": "reassure", "action": "sign"},
    )

    assert response.status_code == 302
    review.refresh_from_db()
    assert review.diagnosis == "mel"
    assert Review.objects.count() == 1


def test_amendment_through_the_form_keeps_version_one(client, doctor, analysis):
    factories.ReviewFactory(
        analysis=analysis, author=doctor, signed_at=timezone.now(), signed_by_name="Dr A"
    )
    client.force_login(doctor)
    follow_up = (timezone.localdate() + datetime.timedelta(days=90)).isoformat()

    response = client.post(
        _url(analysis, "diagnosis:review_amend"),
        {
            "agrees_with_ai": "no",
            "diagnosis": "nv",
            "management": "monitor",
            "follow_up_on": follow_up,
            "amendment_reason": "Second opinion: benign naevus.",
            "action": "sign",
        },
    )

    assert response.status_code == 302
    versions = list(Review.objects.order_by("version"))
    assert [(r.version, r.diagnosis, r.is_signed) for r in versions] == [
        (1, "mel", True),
        (2, "nv", True),
    ]
    page = client.get(_url(analysis)).content.decode()
    assert "amends v1" in page


def test_staff_sees_awaiting_review_on_the_result_page(client, staff, analysis):
    client.force_login(staff)

    body = client.get(reverse("diagnosis:analysis", args=[analysis.pk])).content.decode()

    assert "Awaiting review" in body
    assert "Review and sign" not in body
    assert reverse("reports:analysis_pdf", args=[analysis.pk]) in body


def test_result_page_shows_the_signed_review(client, staff, doctor, analysis):
    factories.ReviewFactory(
        analysis=analysis, author=doctor, signed_at=timezone.now(), signed_by_name="Dr Eva Gruber"
    )
    client.force_login(staff)

    body = client.get(reverse("diagnosis:analysis", args=[analysis.pk])).content.decode()

    assert "Signed by <strong>Dr Eva Gruber</strong>" in body
    assert "Awaiting review" not in body
