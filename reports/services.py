"""The printable report of an analysis: one context, rendered as HTML (print view) or as an A4
PDF by WeasyPrint.

Everything the report shows is inside the HTML: images are read from storage through their
FileFields and embedded as data: URIs, the probability chart is SVG drawn here, and WeasyPrint
is given a URL fetcher that refuses anything but data: URIs, so rendering never touches the
network (or the file system beyond the storage backend).
"""

from __future__ import annotations

import base64
import io
import logging
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from accounts.models import User
from accounts.permissions import require_same_clinic
from diagnosis.models import Analysis, AnalysisStatus
from diagnosis.review_selectors import current_review, current_signed_review
from ml.classes import CLASS_NAMES, CLASSES

logger = logging.getLogger(__name__)

DISCLAIMER = "AI-assisted assessment, not a diagnosis. Consult a dermatologist."
# Images are shrunk to this many pixels on their long side before embedding: sharp at the
# ~70 mm they are printed at (300 dpi), while a 50-megapixel upload stays a small, fast PDF.
REPORT_IMAGE_MAX_SIDE = 900


class ReportUnavailable(Exception):
    """The analysis has no result to report; `reason` says why, in words for the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ProbabilityRow:
    code: str
    name: str
    probability: float

    @property
    def percent(self) -> str:
        return f"{100 * self.probability:.1f}%"


def unavailable_reason(analysis: Analysis) -> str | None:
    """Why no report can be made for this analysis, or None when one can."""
    if analysis.status == AnalysisStatus.DONE:
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


def probability_rows(probabilities: dict[str, float] | None) -> list[ProbabilityRow]:
    """The seven classes, most probable first, with their names in words."""
    probabilities = probabilities or {}
    rows = [
        ProbabilityRow(code, CLASS_NAMES.get(code, code), float(probabilities.get(code, 0.0)))
        for code in CLASSES
    ]
    return sorted(rows, key=lambda row: (-row.probability, row.code))


def probability_chart_svg(
    probabilities: dict[str, float] | None, *, top_class: str = ""
) -> SafeString:
    """A horizontal bar chart of the class probabilities, as inline SVG.

    Drawn here rather than by a charting library so the PDF and the print view show the same
    picture with no JavaScript and no network. The top class is drawn in the accent colour,
    melanoma in red whatever its rank, so the eye finds both.
    """
    rows = probability_rows(probabilities)
    label_w, bar_w, value_w, row_h = 230, 250, 56, 24
    width, height = label_w + bar_w + value_w, row_h * len(rows) + 6
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="prob-chart" role="img" '
        f'aria-label="Class probabilities" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, sans-serif" font-size="11">'
    ]
    for i, row in enumerate(rows):
        y = 3 + i * row_h
        length = max(0.0, min(1.0, row.probability)) * bar_w
        colour = (
            "#b42318" if row.code == "mel" else "#1f5f99" if row.code == top_class else "#8a99a8"
        )
        weight = ' font-weight="bold"' if row.code == top_class else ""
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" fill="#1d2733"{weight}>'
            f"{escape(row.name)}</text>"
            f'<rect x="{label_w}" y="{y + 4}" width="{bar_w}" height="14" fill="#e6ebf0"/>'
            f'<rect x="{label_w}" y="{y + 4}" width="{length:.1f}" height="14" fill="{colour}"/>'
            f'<text x="{label_w + bar_w + 6}" y="{y + 15}" fill="#1d2733"{weight}>'
            f"{row.percent}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated string is escaped above


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
    signed = current_signed_review(analysis=analysis)
    latest = current_review(analysis=analysis)
    top_name = CLASS_NAMES.get(analysis.top_class, analysis.top_class)
    return {
        "analysis": analysis,
        "clinic": patient.clinic,
        "patient": patient,
        "patient_age": patient.age_on(analysed_at.date()),
        "lesion": lesion,
        "analysed_at": analysed_at,
        "generated_at": timezone.localtime(),
        "generated_by": user,
        "image_uri": image_data_uri(image.file) or image_data_uri(image.thumbnail),
        "heatmap_top_uri": image_data_uri(analysis.heatmap_top),
        "heatmap_melanoma_uri": image_data_uri(analysis.heatmap_melanoma),
        "top_class_name": top_name,
        "melanoma_percent": (
            f"{100 * analysis.melanoma_probability:.1f}%"
            if analysis.melanoma_probability is not None
            else "—"
        ),
        "rows": probability_rows(analysis.probabilities),
        "chart_svg": probability_chart_svg(analysis.probabilities, top_class=analysis.top_class),
        "review": signed,
        "pending_amendment": latest if latest is not None and not latest.is_signed else None,
        "disclaimer": DISCLAIMER,
    }


def render_analysis_html(*, user: User, analysis: Analysis) -> str:
    """The print view: the same content as the PDF, for the browser's print dialog."""
    return render_to_string(
        "reports/analysis_report_print.html", report_context(user=user, analysis=analysis)
    )


def render_analysis_pdf(*, user: User, analysis: Analysis) -> bytes:
    """The A4 PDF report of a finished analysis (see report_context for what it raises)."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    html = render_to_string(
        "reports/analysis_report_pdf.html", report_context(user=user, analysis=analysis)
    )
    return HTML(string=html, url_fetcher=URLFetcher(allowed_protocols={"data"})).write_pdf()
