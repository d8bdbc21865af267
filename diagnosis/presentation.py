"""How an analysis's result is shown, in one place: the pages, the PDF report, the REST API and
the FHIR export all take their class names, probability rows, chart, wording and disclaimer
from here, so a result reads the same wherever a clinician or a system sees it.

That includes the three things said of a result besides its probabilities: its clinical
triage (what each level means and what it does not), the image gate's refusal ("Not
analysed: ..." and what to do), and the mark of a result a doctor had made outside the
model's validated use by overriding the gate.

The class list and the classes' names come from ml.classes, the model's own contract.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from xml.sax.saxutils import escape

from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from ml.classes import CLASS_NAMES, CLASSES

DISCLAIMER = "AI-assisted assessment, not a diagnosis. Consult a dermatologist."

__all__ = [
    "CLASS_NAMES",
    "DISCLAIMER",
    "GATE_ADVICE",
    "OUTSIDE_VALIDATED_USE",
    "TRIAGE",
    "GateRefusal",
    "Override",
    "ProbabilityRow",
    "TriageShown",
    "TriageWording",
    "ai_suggestion_text",
    "class_name",
    "gate_refusal",
    "melanoma_percent",
    "outside_validated_use",
    "override_of",
    "probability_chart_svg",
    "probability_rows",
    "refusal_of",
    "risk_tier_label",
    "triage_of",
    "triage_shown",
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


def ai_suggestion_text(
    *,
    top_class: str,
    melanoma_probability: float,
    risk_tier: str,
    triage_level: str = "",
    triage_reason: str = "",
) -> str:
    """The one-line summary of a finished result (the FHIR report's conclusion): the triage
    with its reason when the result has one, else the melanoma risk tier it was given."""
    shown = triage_shown(triage_level, triage_reason)
    if shown is not None:
        return (
            f"AI suggestion: {class_name(top_class)} "
            f"(triage: {shown.text}; melanoma probability {melanoma_probability:.1%})."
        )
    return (
        f"AI suggestion: {class_name(top_class)} "
        f"(melanoma probability {melanoma_probability:.1%}, risk tier {risk_tier})."
    )


# --- Triage -------------------------------------------------------------------------------
# ml.triage sets the level from the calibrated probabilities with boundaries fitted on
# validation images (the model card's `triage` section says what each level caught there).
# What a clinic should take from each level, and what it must not, is said here once.


@dataclass(frozen=True)
class TriageWording:
    label: str  # "Urgent"
    headline: str  # what the model suspects, in a few words
    means: str  # what the level asks of the clinic
    does_not_mean: str  # the misreading to head off


TRIAGE: dict[str, TriageWording] = {
    "urgent": TriageWording(
        label="Urgent",
        headline="melanoma suspected",
        means=(
            "The model's melanoma probability is in its high range. A doctor should review "
            "this result first, and the patient should be seen on the urgent "
            "(suspected-cancer) pathway."
        ),
        does_not_mean=(
            "It is not a diagnosis of melanoma: many lesions triaged urgent turn out to be "
            "benign. Only the doctor's examination and histopathology decide."
        ),
    ),
    "soon": TriageWording(
        label="Soon",
        headline="skin cancer not excluded",
        means=(
            "A basal cell carcinoma or an actinic keratosis / Bowen's disease (squamous cell "
            "carcinoma in situ) is suspected, or melanoma cannot be excluded. A doctor should "
            "review it soon and decide on biopsy, excision, treatment or referral."
        ),
        does_not_mean=(
            "It is not a diagnosis of cancer, and not a reason to wait when the lesion looks "
            "worrying on examination."
        ),
    ),
    "routine": TriageWording(
        label="Routine",
        headline="no skin cancer suspected by the model",
        means=(
            "None of the model's thresholds for melanoma, basal cell carcinoma or actinic "
            "keratosis / Bowen's disease was reached. The result can be reviewed in the usual "
            "order."
        ),
        does_not_mean=(
            "Routine is not a statement that the lesion is benign: the model misses some skin "
            "cancers. A lesion that is new, changing, bleeding, or that worries the patient or "
            "the doctor needs a doctor's assessment whatever its triage."
        ),
    ),
}


@dataclass(frozen=True)
class TriageShown:
    level: str  # "urgent" | "soon" | "routine"
    reason: str  # the finding that set it ("BCC 96%"); empty for routine
    wording: TriageWording

    @property
    def label(self) -> str:
        return self.wording.label

    @property
    def reason_text(self) -> str:
        return self.reason or "no threshold reached"

    @property
    def text(self) -> str:
        """'Soon — BCC 96%': the level with the finding that set it."""
        return f"{self.wording.label} — {self.reason_text}"

    @property
    def meaning(self) -> str:
        """Both sentences: what the level means, then what it does not."""
        return f"{self.wording.means} {self.wording.does_not_mean}"


def triage_shown(level: str | None, reason: str | None = "") -> TriageShown | None:
    """The triage of a result to show, or None for a result without one (a model without
    triage thresholds: it is shown with the melanoma risk tier it was given)."""
    wording = TRIAGE.get(level or "")
    if wording is None:
        return None
    return TriageShown(level=level or "", reason=reason or "", wording=wording)


# --- The image gate -----------------------------------------------------------------------

# Why the gate refused an image, to follow "Not analysed: ", by ml.gate's reason keys.
GATE_REASONS: dict[str, str] = {
    "not_dermoscopic": "this does not look like a dermoscopic image of a skin lesion",
    "too_small": "the image is too small to assess",
    "blurred": "the image is out of focus",
    "too_dark": "the image is too dark",
    "too_bright": "the image is overexposed",
    "uniform": "no lesion is visible (the image is nearly uniform)",
}
# The one thing to change for a quality reason, before the general advice (which is all a
# photograph taken without a dermatoscope needs).
GATE_HINTS: dict[str, str] = {
    "too_small": "Upload the full-resolution photograph, not a thumbnail or a screenshot.",
    "blurred": "Wait until the lesion is sharp before taking the picture.",
    "too_dark": "Turn the dermatoscope's light on.",
    "too_bright": "Use less light and no flash.",
    "uniform": "Point the dermatoscope at the lesion.",
}
GATE_ADVICE = (
    "Retake the image with the dermatoscope touching the skin, in focus, with the lesion "
    "centred, and upload it again."
)
GATE_NO_RESULT = (
    "No AI result is given for this image: the model was not validated on images like it, so "
    "its answer could be meaningless."
)


@dataclass(frozen=True)
class GateRefusal:
    reason_code: str  # ml.gate's key: "not_dermoscopic", "blurred", ...
    reason: str  # in plain words, without the "Not analysed: " in front
    advice: str  # what to do
    explanation: str  # why there is no result at all

    @property
    def headline(self) -> str:
        """'Not analysed: the image is out of focus.'"""
        return f"Not analysed: {self.reason}."

    @property
    def text(self) -> str:
        """Everything in one paragraph (the API, FHIR)."""
        return f"{self.headline} What to do: {self.advice} {self.explanation}"


def gate_refusal(reason_code: str, message: str = "") -> GateRefusal:
    """How a refused image is shown. An unknown reason (a newer gate's) falls back to the
    gate's own message, so it is never hidden."""
    reason = GATE_REASONS.get(reason_code) or (
        message.strip().rstrip(".") or "the image gate refused the image"
    )
    hint = GATE_HINTS.get(reason_code, "")
    advice = f"{hint} {GATE_ADVICE}" if hint else GATE_ADVICE
    return GateRefusal(
        reason_code=reason_code, reason=reason, advice=advice, explanation=GATE_NO_RESULT
    )


# --- A doctor's override of the gate ------------------------------------------------------

OUTSIDE_VALIDATED_USE = "Outside validated use"
OVERRIDE_CAUTION = (
    "The model was not validated on images like this one, so this result may be unreliable; "
    "read it with particular caution."
)


@dataclass(frozen=True)
class Override:
    gate_reason: str  # why the gate refused the image, in plain words
    by: str  # the doctor, by name
    at: datetime.datetime
    reason: str  # the doctor's written reason

    label = OUTSIDE_VALIDATED_USE
    caution = OVERRIDE_CAUTION

    @property
    def text(self) -> str:
        """The mark in one paragraph: what was overridden, by whom, when, why, and so what."""
        when = timezone.localtime(self.at).strftime("%d %b %Y, %H:%M")
        return (
            f"{OUTSIDE_VALIDATED_USE}: the image gate refused this image ({self.gate_reason}); "
            f"{self.by} overrode it on {when}, giving the reason: \u201c{self.reason}\u201d. "
            f"{OVERRIDE_CAUTION}"
        )


def outside_validated_use(
    *,
    overridden_at: datetime.datetime | None,
    overridden_by_name: str,
    override_reason: str,
    gate_reason: str,
    gate_message: str = "",
) -> Override | None:
    """The outside-validated-use mark of an analysis a doctor overrode, or None."""
    if overridden_at is None:
        return None
    return Override(
        gate_reason=gate_refusal(gate_reason, gate_message).reason,
        by=overridden_by_name or "a doctor",
        at=overridden_at,
        reason=override_reason,
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


# --- Of one analysis (duck-typed: this module knows no model) --------------------------------


def triage_of(analysis) -> TriageShown | None:
    return triage_shown(analysis.triage_level, analysis.triage_reason)


def refusal_of(analysis) -> GateRefusal | None:
    """The gate's refusal while it stands (status `not_analysed`); None otherwise."""
    if analysis.status != "not_analysed":
        return None
    return gate_refusal(analysis.gate_reason, analysis.gate_message)


def override_of(analysis) -> Override | None:
    return outside_validated_use(
        overridden_at=analysis.overridden_at,
        overridden_by_name=analysis.overridden_by_name,
        override_reason=analysis.override_reason,
        gate_reason=analysis.gate_reason,
        gate_message=analysis.gate_message,
    )
