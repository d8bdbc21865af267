"""How an analysis's result is shown, in one place: the pages, the PDF report, the REST API and
the FHIR export all take their class names, probability rows, chart, wording and disclaimer
from here, so a result reads the same wherever a clinician or a system sees it.

The class list and the classes' names come from ml.classes, the model's own contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from django.utils.safestring import SafeString, mark_safe

from ml.classes import CLASS_NAMES, CLASSES

DISCLAIMER = "AI-assisted assessment, not a diagnosis. Consult a dermatologist."

__all__ = [
    "CLASS_NAMES",
    "DISCLAIMER",
    "ProbabilityRow",
    "ai_suggestion_text",
    "class_name",
    "melanoma_percent",
    "probability_chart_svg",
    "probability_rows",
    "risk_tier_label",
]


def class_name(code: str) -> str:
    """'mel' -> 'Melanoma'; screens show full names, code keeps the field's short codes. An
    unknown code is shown as it is rather than hidden."""
    return CLASS_NAMES.get(code, code)


def risk_tier_label(tier: str) -> str:
    """'high' -> 'High' (the tiers' display names, as RiskTier labels them)."""
    return tier.capitalize()


def melanoma_percent(probability: float | None) -> str:
    return "—" if probability is None else f"{100 * probability:.1f}%"


@dataclass(frozen=True)
class ProbabilityRow:
    code: str
    name: str
    probability: float
    # The AI suggestion: v2 models weigh rare classes up, so it need not be the first row.
    is_top: bool = False

    @property
    def percent(self) -> float:
        return round(100 * self.probability, 1)

    @property
    def percent_label(self) -> str:
        return f"{100 * self.probability:.1f}%"


def probability_rows(
    probabilities: dict[str, float] | None, *, top_class: str = ""
) -> list[ProbabilityRow]:
    """The seven classes in plain words with their probability, most probable first; equal
    probabilities in the order of the class codes."""
    probabilities = probabilities or {}
    rows = [
        ProbabilityRow(
            code=code,
            name=class_name(code),
            probability=float(probabilities.get(code, 0.0)),
            is_top=code == top_class,
        )
        for code in CLASSES
    ]
    return sorted(rows, key=lambda row: (-row.probability, row.code))


def ai_suggestion_text(*, top_class: str, melanoma_probability: float, risk_tier: str) -> str:
    """The one-line triage wording of a finished result (the FHIR report's conclusion)."""
    return (
        f"AI suggestion: {class_name(top_class)} "
        f"(melanoma probability {melanoma_probability:.1%}, risk tier {risk_tier})."
    )


def probability_chart_svg(
    probabilities: dict[str, float] | None, *, top_class: str = ""
) -> SafeString:
    """A horizontal bar chart of the class probabilities, as inline SVG.

    Drawn here rather than by a charting library so the review page, the PDF and the print
    view show the same picture with no JavaScript and no network. The top class is drawn in
    the accent colour, melanoma in red whatever its rank, so the eye finds both.
    """
    rows = probability_rows(probabilities, top_class=top_class)
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
        colour = "#b42318" if row.code == "mel" else "#1f5f99" if row.is_top else "#8a99a8"
        weight = ' font-weight="bold"' if row.is_top else ""
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" fill="#1d2733"{weight}>'
            f"{escape(row.name)}</text>"
            f'<rect x="{label_w}" y="{y + 4}" width="{bar_w}" height="14" fill="#e6ebf0"/>'
            f'<rect x="{label_w}" y="{y + 4}" width="{length:.1f}" height="14" fill="{colour}"/>'
            f'<text x="{label_w + bar_w + 6}" y="{y + 15}" fill="#1d2733"{weight}>'
            f"{row.percent_label}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated string is escaped above
