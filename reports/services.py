"""The printable report of an analysis: one context, rendered as HTML (print view) or as an A4
PDF by WeasyPrint.

Everything the report shows is inside the HTML: images are read from storage through their
FileFields and embedded as data: URIs, the probability chart is the SVG of
diagnosis.presentation, and WeasyPrint
is given a URL fetcher that refuses anything but data: URIs, so rendering never touches the
network (or the file system beyond the storage backend).
"""

from __future__ import annotations

import base64
import io
import logging
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import User
from accounts.permissions import require_same_clinic
from diagnosis import presentation
from diagnosis.models import Analysis, AnalysisStatus
from diagnosis.selectors import current_review, current_signed_review

logger = logging.getLogger(__name__)

# Images are shrunk to this many pixels on their long side before embedding: sharp at the
# ~70 mm they are printed at (300 dpi), while a 50-megapixel upload stays a small, fast PDF.
REPORT_IMAGE_MAX_SIDE = 900


class ReportUnavailable(Exception):
    """The analysis has no result to report; `reason` says why, in words for the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def unavailable_reason(analysis: Analysis) -> str | None:
    """Why no report can be made for this analysis, or None when one can: a finished result,
    or the image gate's refusal (a report that says "Not analysed" and what to do)."""
    if analysis.status in (AnalysisStatus.DONE, AnalysisStatus.NOT_ANALYSED):
        return None
    if analysis.status == AnalysisStatus.FAILED:
        detail = analysis.failure_reason or "no reason was recorded"
        return (
            f"The analysis failed ({detail}). There is no result to report; "
            "retry the analysis and download the report once it has finished."
        )
    if analysis.status == AnalysisStatus.RUNNING:
        return "The analysis is still running. The report is available once it has finished."
    return "The analysis is still waiting in the queue. The report is available once it has run."


def image_data_uri(field_file, *, max_side: int = REPORT_IMAGE_MAX_SIDE) -> str | None:
    """The stored image as a JPEG data: URI, shrunk to `max_side`; None when there is no file
    or it cannot be read (an original deleted under the retention policy).

    JPEG throughout, heatmaps included: a PDF embeds JPEG bytes as they are, while a PNG must be
    decoded and deflated again, which made a report with two full-size heatmaps twice as slow.
    """
    from PIL import Image

    if not field_file:
        return None
    try:
        with field_file.open("rb") as handle:
            raw = handle.read()
        picture = Image.open(io.BytesIO(raw))
        picture.load()
    except (OSError, ValueError):
        logger.warning("report image %s could not be read", getattr(field_file, "name", "?"))
        return None
    if picture.format == "JPEG" and max(picture.size) <= max_side and picture.mode == "RGB":
        data = raw  # already a small JPEG: embed it untouched
    else:
        picture.thumbnail((max_side, max_side))
        if picture.mode != "RGB":
            picture = picture.convert("RGB")
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=88)
        data = buffer.getvalue()
    return f"data:image/jpeg;base64,{base64.b64encode(data).decode('ascii')}"


def report_context(*, user: User, analysis: Analysis) -> dict[str, Any]:
    """Everything the report template shows. Raises ReportUnavailable for an analysis with no
    result, and PermissionDenied for a user outside the patient's clinic."""
    image = analysis.image
    lesion = image.lesion
    patient = lesion.patient
    require_same_clinic(user, patient.clinic_id)
    reason = unavailable_reason(analysis)
    if reason is not None:
        raise ReportUnavailable(reason)
    analysed_at = timezone.localtime(analysis.finished_at or analysis.queued_at)
    context: dict[str, Any] = {
        "analysis": analysis,
        "clinic": patient.clinic,
        "patient": patient,
        "patient_age": patient.age_on(analysed_at.date()),
        "lesion": lesion,
        "analysed_at": analysed_at,
        "generated_at": timezone.localtime(),
        "generated_by": user,
        "image_uri": image_data_uri(image.file) or image_data_uri(image.thumbnail),
        "disclaimer": presentation.DISCLAIMER,
    }
    refusal = presentation.refusal_of(analysis)
    if refusal is not None:
        # The gate refused the image: no prediction, no heatmap, nothing to review.
        return context | {"refusal": refusal}
    signed = current_signed_review(analysis=analysis)
    latest = current_review(analysis=analysis)
    return context | {
        "heatmap_top_uri": image_data_uri(analysis.heatmap_top),
        "heatmap_melanoma_uri": image_data_uri(analysis.heatmap_melanoma),
        "top_class_name": presentation.class_name(analysis.top_class),
        "melanoma_percent": presentation.melanoma_percent(analysis.melanoma_probability),
        "rows": presentation.probability_rows(analysis.probabilities, top_class=analysis.top_class),
        "chart_svg": presentation.probability_chart_svg(
            analysis.probabilities, top_class=analysis.top_class
        ),
        "triage": presentation.triage_of(analysis),
        "override": presentation.override_of(analysis),
        "review": signed,
        "pending_amendment": latest if latest is not None and not latest.is_signed else None,
        # Review by lesion: the signed review of the visit's latest image that covers this one.
        "covering_review": analysis.covered_by
        if signed is None and analysis.covered_by_id is not None
        else None,
    }


def render_analysis_html(*, user: User, analysis: Analysis) -> str:
    """The print view: the same content as the PDF, for the browser's print dialog."""
    return render_to_string(
        "reports/analysis_report_print.html", report_context(user=user, analysis=analysis)
    )


def render_analysis_pdf(*, user: User, analysis: Analysis) -> bytes:
    """The A4 PDF report of a finished or refused analysis (see report_context for what it
    raises)."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    html = render_to_string(
        "reports/analysis_report_pdf.html", report_context(user=user, analysis=analysis)
    )
    return HTML(string=html, url_fetcher=URLFetcher(allowed_protocols={"data"})).write_pdf()
