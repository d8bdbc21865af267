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
    "LEVEL_RANK",
    "GATE_ADVICE",
    "OUTSIDE_VALIDATED_USE",
    "TRIAGE",
    "GateRefusal",
    "Override",
    "ProbabilityRow",
    "TriageShown",
    "TriageWording",
    "ComparedRow",
    "TrendPoint",
    "TriageChange",
    "ai_suggestion_text",
    "class_name",
    "compared_rows",
    "gate_refusal",
    "melanoma_percent",
    "melanoma_trend_svg",
    "most_urgent",
    "outside_validated_use",
    "override_of",
    "probability_chart_svg",
    "probability_rows",
    "refusal_of",
    "result_level",
    "risk_tier_label",
    "triage_change",
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


# --- A lesion over time: its results' levels, their change, the trend chart -----------------

# A result's level for comparing visits: its triage, or for a result from before triage the
# melanoma risk tier it was given, read the way the worklist places it (high with urgent,
# moderate with soon, low with routine).
TIER_AS_LEVEL = {"high": "urgent", "moderate": "soon", "low": "routine"}
LEVEL_RANK = {"urgent": 0, "soon": 1, "routine": 2}
LEVEL_COLOURS = {"urgent": "#b42318", "soon": "#b54708", "routine": "#1f5f99", "": "#8a99a8"}


def result_level(triage_level: str | None, risk_tier: str | None) -> str:
    """'urgent' | 'soon' | 'routine' for a finished result; '' for none."""
    return triage_level or TIER_AS_LEVEL.get(risk_tier or "", "")


def level_label(level: str) -> str:
    return TRIAGE[level].label if level in TRIAGE else "No result"


def most_urgent(levels) -> str:
    """The most urgent of `levels` ('' when none is a level)."""
    known = [level for level in levels if level in LEVEL_RANK]
    return min(known, key=LEVEL_RANK.__getitem__) if known else ""


@dataclass(frozen=True)
class TriageChange:
    """A lesion's triage changed between its last two visits with a result."""

    before: str  # level
    after: str
    before_on: datetime.date
    after_on: datetime.date

    @property
    def worse(self) -> bool:
        return LEVEL_RANK[self.after] < LEVEL_RANK[self.before]

    @property
    def text(self) -> str:
        """'Changed since last visit: Routine (3 Mar 2025) → Urgent (9 Jun 2025)'."""
        return (
            f"Changed since last visit: {level_label(self.before)} "
            f"({_day(self.before_on)}) \u2192 {level_label(self.after)} ({_day(self.after_on)})"
        )


def _day(day: datetime.date) -> str:
    return f"{day.day} {day:%b %Y}"


def triage_change(visits: list[tuple[datetime.date, str]]) -> TriageChange | None:
    """Whether the triage changed since the last visit. `visits` are (day, level) pairs, one
    per result; a visit's level is its most urgent result's (a visit with one urgent image of
    three is an urgent visit). Compares the last two days that have a result."""
    by_day: dict[datetime.date, list[str]] = {}
    for day, level in visits:
        if level in LEVEL_RANK:
            by_day.setdefault(day, []).append(level)
    days = sorted(by_day)
    if len(days) < 2:
        return None
    before, after = most_urgent(by_day[days[-2]]), most_urgent(by_day[days[-1]])
    if before == after:
        return None
    return TriageChange(before=before, after=after, before_on=days[-2], after_on=days[-1])


@dataclass(frozen=True)
class TrendPoint:
    day: datetime.date
    melanoma_probability: float
    level: str  # result_level()
    label: str  # what the point's tooltip says, e.g. "Image 12"


def melanoma_trend_svg(points: list[TrendPoint]) -> SafeString:
    """A small chart of a lesion's melanoma probability over time, each result a dot coloured
    by its triage, with the triage written under its dot, as inline SVG (no script, prints).

    Time runs left to right in proportion to the days between results, so a fast change looks
    fast; results of one day sit side by side."""
    width, height = 560, 210
    left, right, top, plot_h = 48, 16, 14, 130
    plot_w = width - left - right
    points = sorted(points, key=lambda p: p.day)
    summary = "; ".join(
        f"{_day(p.day)}: melanoma {100 * p.melanoma_probability:.0f}%, {level_label(p.level)}"
        for p in points
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend-chart" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-label="{escape("Melanoma probability over time: " + summary, {chr(34): "&quot;"})}" '
        'font-family="DejaVu Sans, sans-serif" font-size="11">'
    ]
    for tick in (0, 25, 50, 75, 100):
        y = top + plot_h * (1 - tick / 100)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
            f'stroke="#e6ebf0"/><text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
            f'fill="#5b6875">{tick}%</text>'
        )
    parts.append(
        f'<text x="{left}" y="{height - 4}" fill="#5b6875">Melanoma probability; triage '
        "under each result</text>"
    )
    if points:
        first, last = points[0].day, points[-1].day
        span = (last - first).days
        xs: list[float] = []
        for point in points:
            if span:
                x = left + 12 + (plot_w - 24) * (point.day - first).days / span
            else:
                x = left + plot_w / 2
            # Results of one day (or a few days apart) are spread so their dots do not overlap.
            if xs and x - xs[-1] < 22:
                x = min(xs[-1] + 22, width - right - 4)
            xs.append(x)
        coords = [
            (x, top + plot_h * (1 - max(0.0, min(1.0, p.melanoma_probability))))
            for x, p in zip(xs, points, strict=True)
        ]
        if len(coords) > 1:
            line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(
                f'<polyline points="{line}" fill="none" stroke="#5b6875" stroke-width="1.5"/>'
            )
        shown_days: set[datetime.date] = set()
        for (x, y), point in zip(coords, points, strict=True):
            colour = LEVEL_COLOURS.get(point.level, LEVEL_COLOURS[""])
            level = level_label(point.level)
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}" stroke="#fff" '
                f'stroke-width="1.5"><title>{escape(point.label)}: {_day(point.day)}, melanoma '
                f"{100 * point.melanoma_probability:.1f}%, {escape(level)}</title></circle>"
                f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                f'fill="{colour}" font-weight="bold">{escape(level[:1])}</text>'
            )
            if point.day not in shown_days:
                shown_days.add(point.day)
                parts.append(
                    f'<text x="{x:.1f}" y="{top + plot_h + 32}" text-anchor="middle" '
                    f'fill="#5b6875">{point.day:%d %b %y}</text>'
                )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated string is escaped above


@dataclass(frozen=True)
class ComparedRow:
    """One class's probability in two results of a lesion, and the change between them."""

    code: str
    name: str
    before: float
    after: float

    @property
    def change_points(self) -> float:
        """The change in percentage points, after minus before."""
        return round(100 * (self.after - self.before), 1)

    @property
    def change_label(self) -> str:
        change = self.change_points
        return "no change" if change == 0 else f"{change:+.1f} points"


def compared_rows(
    before: dict[str, float] | None, after: dict[str, float] | None
) -> list[ComparedRow]:
    """The seven classes with their probability in both results, melanoma first, then by the
    later result's probability."""
    before, after = before or {}, after or {}
    rows = [
        ComparedRow(
            code=code,
            name=class_name(code),
            before=float(before.get(code, 0.0)),
            after=float(after.get(code, 0.0)),
        )
        for code in CLASSES
    ]
    return sorted(rows, key=lambda row: (row.code != "mel", -row.after, row.code))


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
