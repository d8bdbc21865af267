"""Has what a clinic's uploads look like to the model drifted from what it was validated on?

The portal counts, per clinic and week, the mix of triage levels, how many images the image gate
refused and the mean melanoma probability; `expected` reads the same figures from the served
version's card (and its gate's measurements), and `shifts` says, in words, which ones moved.

The thresholds are deliberately coarse: a clinic's case mix is not HAM10000's (two thirds
naevi), so a difference of a few points is expected and says nothing. A shift of 15 points in
a triage level, a gate refusing several times what it refused of validation dermoscopy, or a
mean melanoma probability 10 points away, is worth an administrator's look: a new dermatoscope,
a change in who is referred, or photographs that are not dermoscopy.
"""

from __future__ import annotations

from ml.triage import LEVELS

MIN_ANALYSES = 20  # fewer in a week: too few to tell a shift from chance
LEVEL_SHIFT = 0.15  # absolute share of a triage level
MEAN_MELANOMA_SHIFT = 0.10  # absolute, mean p(mel)
GATE_MIN_REFUSED = 0.05  # the gate refusing at least this share...
GATE_FACTOR = 5.0  # ...and this many times its validation share
# A result without triage (v1) by its melanoma risk tier, which the same boundaries set.
TIER_LEVEL = {"low": "routine", "moderate": "soon", "high": "urgent"}


def expected(card: dict, gate: dict | None = None) -> dict:
    """The card's validation figures in `shifts`'s terms: the share of each triage level,
    the mean melanoma probability (the validation prevalence: the model is calibrated), and,
    for a model with a gate, the share of validation dermoscopy it refused."""
    validation = card.get("validation") or {}
    n = validation.get("n") or 0
    n_mel = (validation.get("melanoma") or {}).get("n_melanoma") or 0
    figures: dict = {"triage": None, "mean_melanoma_probability": None, "gate_refused": None}
    by_class = ((card.get("triage") or {}).get("report_half") or {}).get("by_class")
    if by_class:
        total = sum(sum(levels.values()) for levels in by_class.values())
        figures["triage"] = {
            level: round(sum(levels.get(level, 0) for levels in by_class.values()) / total, 4)
            for level in LEVELS
        }
    elif card.get("tiers") and n and n_mel:
        tiers = card["tiers"]
        figures["triage"] = {
            TIER_LEVEL[tier]: round(
                (
                    tiers[tier]["validation"]["share_of_melanomas"] * n_mel
                    + tiers[tier]["validation"]["share_of_non_melanomas"] * (n - n_mel)
                )
                / n,
                4,
            )
            for tier in ("low", "moderate", "high")
        }
    if n and n_mel:
        figures["mean_melanoma_probability"] = round(n_mel / n, 4)
    accepted = ((gate or {}).get("measured") or {}).get("report_half_accepted")
    if accepted:
        figures["gate_refused"] = round(1 - accepted["share"], 4)
    return figures


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def shifts(observed: dict, expected_figures: dict) -> list[str]:
    """Each figure that moved beyond its threshold, in words; [] when none did or when the
    week had fewer than MIN_ANALYSES finished analyses.

    `observed`: n (finished analyses), triage (share per level of those with a result),
    mean_melanoma_probability, gate_refused (share of the n)."""
    if observed.get("n", 0) < MIN_ANALYSES:
        return []
    found = []
    for level in LEVELS:
        seen = (observed.get("triage") or {}).get(level)
        then = (expected_figures.get("triage") or {}).get(level)
        if seen is not None and then is not None and abs(seen - then) >= LEVEL_SHIFT:
            found.append(
                f"{level.capitalize()} results were {_percent(seen)} of the week's analyses; "
                f"{_percent(then)} on validation."
            )
    seen, then = observed.get("gate_refused"), expected_figures.get("gate_refused")
    if seen is not None and then is not None:
        if seen >= GATE_MIN_REFUSED and seen >= GATE_FACTOR * then:
            found.append(
                f"The image gate refused {_percent(seen)} of images; it refused "
                f"{100 * then:.1f}% of validation dermoscopy."
            )
    seen = observed.get("mean_melanoma_probability")
    then = expected_figures.get("mean_melanoma_probability")
    if seen is not None and then is not None and abs(seen - then) >= MEAN_MELANOMA_SHIFT:
        found.append(
            f"The mean melanoma probability was {_percent(seen)}; {_percent(then)} on validation."
        )
    return found
