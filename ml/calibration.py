"""Temperature scaling and the melanoma risk tiers, both fitted on validation predictions.

A network trained with cross-entropy (here also with label smoothing and class re-weighting)
gives probabilities that are not frequencies: '0.8' does not mean right four times in five.
Temperature scaling (Guo et al., 2017) divides every logit by one number T fitted to minimise
the validation negative log-likelihood; it leaves the arg-max untouched and makes the
probabilities shown to a doctor mean what they say, on data like the validation set.

Risk tiers are a melanoma decision on the calibrated p(mel), with boundaries chosen on the
validation set rather than round numbers, so each boundary has a measured meaning:

- moderate: p(mel) >= the largest threshold that still finds >= 95% of validation melanomas.
  Below it is 'low'; by construction at most 5% of validation melanomas are tiered low. This
  is the 'do not miss' boundary a triage tool must have.
- high: p(mel) >= the smallest threshold that leaves >= 95% of validation non-melanomas below
  it, i.e. at most 1 in 20 benign lesions is tiered high. A specificity anchor rather than a
  precision one, because precision depends on how common melanoma is where the tool is used
  (11% in HAM10000, far less in primary care) and specificity does not. If the model is so
  good that this threshold falls below the moderate one, high starts at the moderate one.

Both are validation-set figures: a new clinic's cameras and patients will move them, which is
why the model card reports them and `ml.evaluate` re-measures them on any labelled set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ml.metrics import sensitivity_specificity, threshold_for_sensitivity, threshold_for_specificity

RISK_TIERS: tuple[str, ...] = ("low", "moderate", "high")
MODERATE_SENSITIVITY: float = 0.95
HIGH_SPECIFICITY: float = 0.95


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, in float64 and stable for large logits."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean cross-entropy of the true labels under softmax(logits / temperature)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    y = np.asarray(labels, dtype=np.int64)
    return float(np.mean(log_norm - z[np.arange(len(y)), y]))


def fit_temperature(
    logits: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    bounds: tuple[float, float] = (0.05, 20.0),
) -> float:
    """The T minimising validation NLL, by golden-section search on 1/T.

    The NLL is convex in 1/T (a log-sum-exp of terms linear in it, minus a linear term), so a
    bracketing search finds the global minimum without step sizes to tune, deterministically.
    """
    y = np.asarray(labels, dtype=np.int64)
    lo, hi = 1.0 / bounds[1], 1.0 / bounds[0]
    ratio = (np.sqrt(5.0) - 1.0) / 2.0

    def loss(beta: float) -> float:
        return negative_log_likelihood(logits, y, 1.0 / beta)

    a, b = lo, hi
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    while b - a > 1e-7:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return float(1.0 / ((a + b) / 2.0))


@dataclass(frozen=True)
class RiskThresholds:
    """Boundaries on calibrated p(mel): moderate from a sensitivity, high from a specificity."""

    moderate: float
    high: float

    def tier(self, p_melanoma: float) -> str:
        if p_melanoma >= self.high:
            return "high"
        if p_melanoma >= self.moderate:
            return "moderate"
        return "low"

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def fit_risk_thresholds(
    is_melanoma: Sequence[int] | np.ndarray,
    p_melanoma: Sequence[float] | np.ndarray,
    sensitivity: float = MODERATE_SENSITIVITY,
    specificity: float = HIGH_SPECIFICITY,
) -> RiskThresholds:
    """Tier boundaries from validation labels and calibrated p(mel); see the module docstring."""
    moderate = margin_below(
        threshold_for_sensitivity(is_melanoma, p_melanoma, sensitivity), p_melanoma
    )
    high = max(threshold_for_specificity(is_melanoma, p_melanoma, specificity), moderate)
    return RiskThresholds(moderate=moderate, high=high)


def margin_below(threshold: float, scores: Sequence[float] | np.ndarray) -> float:
    """Halfway between the threshold and the next lower validation score.

    The sensitivity threshold is exactly the score of the last melanoma it must catch; the
    same image recomputed in another batch differs in the last float bits and could fall just
    under it. Halfway to the next score tiers every validation image the same, with room.
    """
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    lower = values[values < threshold]
    return float((threshold + lower.max()) / 2) if lower.size else threshold


def tier_definitions(
    thresholds: RiskThresholds,
    is_melanoma: Sequence[int] | np.ndarray,
    p_melanoma: Sequence[float] | np.ndarray,
    sensitivity: float = MODERATE_SENSITIVITY,
    specificity: float = HIGH_SPECIFICITY,
) -> dict[str, dict]:
    """Each tier's rule in words and what it measured on the data it was fitted on, for the
    model card: a doctor reading 'high' should be able to find out what 'high' means."""
    y = np.asarray(is_melanoma).astype(bool).reshape(-1)
    p = np.asarray(p_melanoma, dtype=np.float64).reshape(-1)
    tiers = np.array([thresholds.tier(float(v)) for v in p])
    mod_sens, mod_spec = sensitivity_specificity(y, p, thresholds.moderate)
    high_sens, high_spec = sensitivity_specificity(y, p, thresholds.high)

    def share(tier: str) -> dict[str, float]:
        inside = tiers == tier
        return {
            "share_of_melanomas": float(inside[y].mean()) if y.any() else 0.0,
            "share_of_non_melanomas": float(inside[~y].mean()) if (~y).any() else 0.0,
            "melanoma_fraction_in_tier": float(y[inside].mean()) if inside.any() else 0.0,
        }

    return {
        "low": {
            "rule": f"p(mel) < {thresholds.moderate:.6g}",
            "meaning": f"below the threshold that finds >= {sensitivity:.0%} of validation "
            "melanomas",
            "validation": share("low"),
        },
        "moderate": {
            "rule": f"{thresholds.moderate:.6g} <= p(mel) < {thresholds.high:.6g}",
            "meaning": f"melanoma not excluded: at this boundary validation sensitivity "
            f"{mod_sens:.3f}, specificity {mod_spec:.3f}",
            "validation": share("moderate"),
        },
        "high": {
            "rule": f"p(mel) >= {thresholds.high:.6g}",
            "meaning": f"at most {1 - specificity:.0%} of validation non-melanomas reach it: "
            f"sensitivity {high_sens:.3f}, specificity {high_spec:.3f}",
            "validation": share("high"),
        },
    }
