"""Clinical triage from the calibrated probabilities: every skin cancer, not melanoma alone.

Three levels, each with a boundary fitted on the select half and a measured meaning:
- urgent: melanoma suspected, p(mel) >= t_high (the high risk tier: at most 5% of select-half
  non-melanomas reach it);
- soon: melanoma not excluded, p(mel) >= t_moderate (>= 95% of select-half melanomas reach it),
  or a non-melanoma skin cancer / pre-cancer suspected, p(bcc) + p(akiec) >= t_nmsc (>= 95% of
  select-half basal cell carcinomas and actinic keratoses / Bowen's disease reach it);
- routine: none of these.
A 96% basal cell carcinoma is therefore never routine: t_nmsc is fitted to catch 95% of them.
Each level comes with its reason in words ("BCC 96%"), the way a clinician would say it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ml.calibration import margin_below
from ml.classes import CLASSES
from ml.metrics import sensitivity_specificity, threshold_for_sensitivity

LEVELS: tuple[str, ...] = ("routine", "soon", "urgent")
NMSC: tuple[str, ...] = ("bcc", "akiec")
NMSC_SENSITIVITY = 0.95
SHORT_NAMES = {"mel": "Melanoma", "bcc": "BCC", "akiec": "AK/Bowen's"}


@dataclass(frozen=True)
class TriageThresholds:
    moderate: float  # p(mel): melanoma not excluded
    high: float  # p(mel): melanoma suspected
    nmsc: float  # p(bcc) + p(akiec): non-melanoma skin cancer suspected

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Triage:
    level: str  # one of LEVELS
    reason: str  # e.g. "Melanoma 72%" or "BCC 96%"; empty for routine


def _p(probabilities: Mapping[str, float], code: str) -> float:
    return float(probabilities.get(code, 0.0))


def triage(probabilities: Mapping[str, float], thresholds: TriageThresholds) -> Triage:
    """The level of one calibrated probability vector, with the finding that set it."""
    p_mel = _p(probabilities, "mel")
    p_nmsc = sum(_p(probabilities, c) for c in NMSC)
    mel_reason = f"{SHORT_NAMES['mel']} {p_mel:.0%}"
    if p_mel >= thresholds.high:
        return Triage("urgent", mel_reason)
    if p_nmsc >= thresholds.nmsc:
        top = max(NMSC, key=lambda c: _p(probabilities, c))
        return Triage("soon", f"{SHORT_NAMES[top]} {_p(probabilities, top):.0%}")
    if p_mel >= thresholds.moderate:
        return Triage("soon", f"{mel_reason} (not excluded)")
    return Triage("routine", "")


def fit_nmsc_threshold(labels: Sequence[int] | np.ndarray, probs: np.ndarray) -> float:
    """The largest p(bcc)+p(akiec) boundary that still flags NMSC_SENSITIVITY of the select
    half's basal cell carcinomas and actinic keratoses, halfway to the next score below."""
    y = np.isin(np.asarray(labels), [CLASSES.index(c) for c in NMSC])
    score = probs[:, [CLASSES.index(c) for c in NMSC]].sum(1)
    return margin_below(threshold_for_sensitivity(y, score, NMSC_SENSITIVITY), score)


def measure(
    labels: Sequence[int] | np.ndarray, probs: np.ndarray, thresholds: TriageThresholds
) -> dict:
    """What each level means on labelled images: how many of each diagnosis land in it, and
    the sensitivities a clinic asks for (melanoma, NMSC, any malignancy sent beyond routine)."""
    y = np.asarray(labels)
    levels = np.array(
        [
            triage(dict(zip(CLASSES, row, strict=True)), thresholds).level
            for row in np.asarray(probs)
        ]
    )
    not_routine = levels != "routine"
    is_mel = y == CLASSES.index("mel")
    is_nmsc = np.isin(y, [CLASSES.index(c) for c in NMSC])
    malignant = is_mel | is_nmsc
    by_class = {
        code: {level: int(((levels == level) & (y == i)).sum()) for level in LEVELS}
        for i, code in enumerate(CLASSES)
    }

    def share(mask: np.ndarray, flagged: np.ndarray) -> float | None:
        return float(flagged[mask].mean()) if mask.any() else None

    return {
        "n": int(len(y)),
        "by_class": by_class,
        "melanoma_sensitivity_not_routine": share(is_mel, not_routine),
        "melanoma_sensitivity_urgent": share(is_mel, levels == "urgent"),
        "nmsc_sensitivity_not_routine": share(is_nmsc, not_routine),
        "malignant_any_sensitivity_not_routine": share(malignant, not_routine),
        "benign_specificity_routine": share(~malignant, ~not_routine),
        "melanoma_specificity_urgent": sensitivity_specificity(
            is_mel, (levels == "urgent").astype(float), 0.5
        )[1],
    }
