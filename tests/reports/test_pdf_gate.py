"""The PDF report of a refused image, of an overridden result and of a triaged result.

A refused image's report says "Not analysed: <reason>" and what to do, with no prediction, no
chart and no heatmap; an overridden result's report carries the "Outside validated use" mark
with the doctor's reason and name; a triaged result shows its triage and what it means, and an
old result its melanoma risk tier.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pypdf
import pytest
from django.urls import reverse
from django.utils import timezone

from diagnosis import presentation
from reports.services import render_analysis_pdf
from tests import factories

REASON = "Dermoscopic image from a new device; checked by eye"


def _keep(pdf: bytes, name: str) -> bytes:
    """SCREENSHOT_DIR=... keeps the PDFs, to look at by eye."""
    shots = os.environ.get("SCREENSHOT_DIR")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        (Path(shots) / f"{name}.pdf").write_bytes(pdf)
    return pdf


def _text(pdf: bytes) -> tuple[pypdf.PdfReader, str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    return reader, text


@pytest.fixture
def image(lesion):
    return factories.DermoscopicImageFactory(lesion=lesion)


def test_refused_image_report_says_not_analysed_and_what_to_do_without_a_prediction(doctor, image):
    refused = factories.NotAnalysedFactory(image=image, gate_reason="blurred")

    reader, text = _text(_keep(render_analysis_pdf(user=doctor, analysis=refused), "refusal"))

    assert "NOT ANALYSED" in text
    assert "Not analysed: the image is out of focus." in text
    assert "What to do:" in text
    assert presentation.GATE_ADVICE in text
    assert presentation.DISCLAIMER in text
    for absent in ("%", "probabilit", "Melanoma", "Basal cell", "Heatmap", "Risk tier", "Triage"):
        assert absent not in text, absent
    # Only the uploaded image is embedded: no heatmap.
    assert [i.image.size for page in reader.pages for i in page.images] == [(200, 150)]


def test_refused_image_report_downloads_from_the_page_link(client, staff, image):
    refused = factories.NotAnalysedFactory(image=image)
    client.force_login(staff)

    response = client.get(reverse("reports:analysis_pdf", args=[refused.pk]))
    printed = client.get(reverse("reports:analysis_print", args=[refused.pk])).content.decode()

    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert "Not analysed: this does not look like a dermoscopic image" in printed


def test_overridden_result_report_is_marked_outside_validated_use(doctor, image):
    analysis = factories.TriagedAnalysisFactory(
        image=image,
        gate_reason="not_dermoscopic",
        overridden_at=timezone.now(),
        overridden_by=doctor,
        overridden_by_name="Dr Maria Gruber",
        override_reason=REASON,
    )

    pdf = render_analysis_pdf(user=doctor, analysis=analysis)
    reader, text = _text(_keep(pdf, "overridden-result"))

    assert len(reader.pages) == 2
    assert "OUTSIDE VALIDATED USE" in text.upper()
    assert "Dr Maria Gruber" in text
    assert REASON in text
    assert "this does not look like a dermoscopic image" in text
    assert "Basal cell carcinoma" in text  # the prediction is there, marked


def test_triaged_result_report_shows_triage_reason_and_meaning(doctor, image):
    analysis = factories.TriagedAnalysisFactory(image=image)

    reader, text = _text(_keep(render_analysis_pdf(user=doctor, analysis=analysis), "triaged"))

    assert len(reader.pages) == 2  # the result on page 1, the review on page 2
    assert "Triage SOON — BCC 96%" in text
    assert "What it does not mean:" in text
    assert "Risk tier" not in text
    assert "OUTSIDE VALIDATED USE" not in text.upper()


def test_routine_report_says_routine_is_not_benign(doctor, image):
    analysis = factories.TriagedAnalysisFactory(
        image=image, triage_level="routine", triage_reason="", top_class="nv"
    )

    _reader, text = _text(render_analysis_pdf(user=doctor, analysis=analysis))

    assert "Triage ROUTINE — no threshold reached" in text
    assert "Routine is not a statement that the lesion is benign" in text


def test_old_result_report_keeps_its_risk_tier(doctor, image):
    analysis = factories.DoneAnalysisFactory(image=image)

    _reader, text = _text(render_analysis_pdf(user=doctor, analysis=analysis))

    assert "Risk tier HIGH" in text
    assert "Triage" not in text
