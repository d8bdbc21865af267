"""The PDF report through the API (rendered by WeasyPrint, the same service as the page)."""

from __future__ import annotations

import io

from pypdf import PdfReader

from accounts.models import AuditEvent


def test_done_analysis_report_is_a_pdf_with_the_disclaimer(api, staff, done_analysis):
    response = api.get(f"/api/v1/analyses/{done_analysis.pk}/report/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert "not a diagnosis" in text
    assert AuditEvent.objects.filter(
        action="report.download", user=staff, object_id=str(done_analysis.pk)
    ).exists()


def test_unfinished_analysis_report_is_409_json(api, queued_analysis):
    response = api.get(
        f"/api/v1/analyses/{queued_analysis.pk}/report/", HTTP_ACCEPT="application/pdf"
    )

    assert response.status_code == 409
    assert response.json()["status"] == 409
    assert response.json()["message"]


def test_other_clinics_report_is_404(other_api, done_analysis):
    response = other_api.get(f"/api/v1/analyses/{done_analysis.pk}/report/")

    assert response.status_code == 404
    assert response.json()["message"] == "No such analysis."
