"""The PDF report: what it contains, that it embeds the images, and who may download it."""

from __future__ import annotations

import io

import pypdf
import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from diagnosis.presentation import DISCLAIMER
from reports.services import ReportUnavailable, render_analysis_pdf
from tests import factories


@pytest.fixture
def done_analysis(patient):
    lesion = factories.LesionFactory(patient=patient, anatomic_site="back", label="left scapula")
    image = factories.DermoscopicImageFactory(lesion=lesion)
    return factories.DoneAnalysisFactory(image=image)


def _text(pdf: bytes) -> tuple[pypdf.PdfReader, str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    # Collapse whitespace: pypdf may break a line where the layout wrapped it.
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    return reader, text


def test_pdf_contains_patient_result_and_disclaimer_on_every_page(doctor, patient, done_analysis):
    pdf = render_analysis_pdf(user=doctor, analysis=done_analysis)

    assert pdf.startswith(b"%PDF")
    reader, text = _text(pdf)
    assert len(reader.pages) == 2
    assert patient.full_name in text
    assert patient.mrn in text
    assert "Melanoma" in text  # the top class in words, not "mel"
    assert "ham10000-test-v1" in text
    assert "Vienna Skin Clinic" in text
    assert "Back — left scapula" in text
    assert "HIGH" in text
    for number, page in enumerate(reader.pages, start=1):
        page_text = " ".join(page.extract_text().split())
        assert DISCLAIMER in page_text
        assert f"Page {number} of 2" in page_text


def test_pdf_embeds_the_image_and_the_heatmap(doctor, done_analysis):
    pdf = render_analysis_pdf(user=doctor, analysis=done_analysis)

    reader = pypdf.PdfReader(io.BytesIO(pdf))
    images = reader.pages[0].images
    sizes = sorted(image.image.size for image in images)
    # The 200x150 dermoscopic image and the 112x84 heatmap of the top class (melanoma, so the
    # melanoma heatmap is not shown twice).
    assert sizes == [(112, 84), (200, 150)]


def test_unreviewed_report_carries_a_visible_not_reviewed_mark(doctor, done_analysis):
    _, text = _text(render_analysis_pdf(user=doctor, analysis=done_analysis))

    assert "NOT REVIEWED" in text
    assert "Electronically signed" not in text


def test_signed_review_appears_with_its_signature(doctor, done_analysis):
    factories.ReviewFactory(
        analysis=done_analysis,
        author=doctor,
        diagnosis="nv",
        agrees_with_ai=False,
        management="monitor",
        follow_up_on=timezone.localdate(),
        notes="Regular network on dermoscopy.",
        signed_at=timezone.now(),
        signed_by=doctor,
        signed_by_name="Dr Eva Gruber",
    )

    _, text = _text(render_analysis_pdf(user=doctor, analysis=done_analysis))

    assert "NOT REVIEWED" not in text
    assert "Electronically signed by Dr Eva Gruber" in text
    assert "Melanocytic nevus" in text
    assert "Regular network on dermoscopy." in text
    assert "Monitor" in text


def test_an_unsigned_draft_does_not_count_as_reviewed(doctor, done_analysis):
    factories.ReviewFactory(analysis=done_analysis, author=doctor)

    _, text = _text(render_analysis_pdf(user=doctor, analysis=done_analysis))

    assert "NOT REVIEWED" in text


@pytest.mark.parametrize("status", ["queued", "running", "failed"])
def test_no_report_for_an_analysis_without_result(doctor, lesion, status):
    image = factories.DermoscopicImageFactory(lesion=lesion)
    analysis = factories.AnalysisFactory(image=image, status=status, failure_reason="Boom")

    with pytest.raises(ReportUnavailable) as raised:
        render_analysis_pdf(user=doctor, analysis=analysis)

    expected = {"queued": "waiting in the queue", "running": "still running", "failed": "Boom"}
    assert expected[status] in raised.value.reason


def test_service_refuses_a_user_of_another_clinic(other_staff, done_analysis):
    with pytest.raises(PermissionDenied):
        render_analysis_pdf(user=other_staff, analysis=done_analysis)


def test_download_view_returns_the_pdf_and_audits_it(client, staff, done_analysis):
    client.force_login(staff)

    response = client.get(reverse("reports:analysis_pdf", args=[done_analysis.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert "attachment" in response["Content-Disposition"]
    event = AuditEvent.objects.get(action="report.download")
    assert event.user == staff
    assert event.patient_id == done_analysis.image.lesion.patient_id


def test_other_clinic_gets_404_for_pdf_and_print_view(client, other_staff, done_analysis):
    client.force_login(other_staff)

    for name in ("reports:analysis_pdf", "reports:analysis_print"):
        response = client.get(reverse(name, args=[done_analysis.pk]))
        assert response.status_code == 404
    assert not AuditEvent.objects.filter(action="report.download").exists()


def test_anonymous_visitor_is_sent_to_log_in(client, done_analysis):
    response = client.get(reverse("reports:analysis_pdf", args=[done_analysis.pk]))

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_failed_analysis_gets_a_page_saying_why(client, staff, lesion):
    image = factories.DermoscopicImageFactory(lesion=lesion)
    analysis = factories.AnalysisFactory(
        image=image, status="failed", failure_reason="No classifier installed"
    )
    client.force_login(staff)

    response = client.get(reverse("reports:analysis_pdf", args=[analysis.pk]))

    assert response.status_code == 409
    assert response["Content-Type"].startswith("text/html")
    assert "No classifier installed" in response.content.decode()
    assert "retry the analysis" in response.content.decode()


def test_queued_analysis_print_view_says_it_is_waiting(client, staff, lesion):
    analysis = factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
    client.force_login(staff)

    response = client.get(reverse("reports:analysis_print", args=[analysis.pk]))

    assert response.status_code == 409
    assert "still waiting in the queue" in response.content.decode()


def test_print_view_shows_the_report_in_html(client, staff, patient, done_analysis):
    client.force_login(staff)

    response = client.get(reverse("reports:analysis_print", args=[done_analysis.pk]))

    body = response.content.decode()
    assert response.status_code == 200
    assert patient.mrn in body
    assert DISCLAIMER in body
    assert "data:image/jpeg;base64," in body
    assert "<svg" in body and "Melanoma" in body
    assert "NOT REVIEWED" in body
