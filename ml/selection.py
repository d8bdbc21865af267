"""What v2's export fits on the "select" half of validation: calibration and the decision rule.

Calibration is bias-corrected temperature scaling (BCTS; Alexandari, Kundaje and Shrikumar,
2020): one temperature plus one bias per class, fitted by negative log-likelihood. A network
trained on class-balanced batches believes every class is about equally common; plain
temperature scaling cannot undo that, the per-class bias can, so the probabilities shown mean
what they say at HAM10000's case mix.

The shown class is then a separate, explicit decision: argmax of p(class) / prior(class)^alpha,
with the training prior and one alpha fitted to maximise balanced accuracy. alpha = 0 is plain
argmax (most likely class); alpha = 1 weighs every class's recall equally. One number, not
seven per-class weights, because the select half holds eight dermatofibromas: seven free
weights would fit their noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ml.calibration import softmax
from ml.metrics import balanced_accuracy

ALPHA_GRID: tuple[float, ...] = tuple(round(a, 2) for a in np.linspace(0.0, 1.5, 31))


def calibrate(
    logits: np.ndarray, temperature: float, bias: Sequence[float] | None = None
) -> np.ndarray:
    """softmax(logits / temperature + bias), row-wise, float64 (v1's softmax plus the bias)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    if bias is not None:
        z = z + np.asarray(bias, dtype=np.float64)
    return softmax(z)


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float, bias: np.ndarray) -> float:
    probs = calibrate(logits, temperature, bias)
    return float(-np.mean(np.log(probs[np.arange(len(labels)), labels] + 1e-300)))


def fit_bcts(logits: np.ndarray, labels: Sequence[int] | np.ndarray) -> tuple[float, np.ndarray]:
    """(temperature, per-class bias with mean 0) minimising NLL; a light L2 on the bias keeps
    a class with a handful of validation images from being pushed to an extreme."""
    y = np.asarray(labels, dtype=np.int64)
    x = np.asarray(logits, dtype=np.float64)
    k = x.shape[1]

    def loss(params: np.ndarray) -> float:
        temperature, bias = np.exp(params[0]), params[1:] - params[1:].mean()
        return _nll(x, y, temperature, bias) + 1e-3 * float(bias @ bias)

    from scipy.optimize import minimize  # fitting only; serving calibrates without it

    result = minimize(loss, np.zeros(k + 1), method="L-BFGS-B")
    temperature = float(np.exp(result.x[0]))
    bias = result.x[1:] - result.x[1:].mean()
    return temperature, bias


def nll(
    logits: np.ndarray, labels: Sequence[int] | np.ndarray, temperature: float, bias=None
) -> float:
    """Mean negative log-likelihood of the labels under the calibrated probabilities."""
    k = np.asarray(logits).shape[1]
    b = np.zeros(k) if bias is None else np.asarray(bias, dtype=np.float64)
    return _nll(np.asarray(logits, dtype=np.float64), np.asarray(labels), temperature, b)


def decision_weights(prior: Sequence[float], alpha: float) -> np.ndarray:
    """prior^-alpha, scaled so the largest weight is 1 (only ratios matter to an argmax)."""
    w = np.asarray(prior, dtype=np.float64) ** -alpha
    return w / w.max()


def decide(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Index of the shown class of each row: argmax(p * weight)."""
    return (np.asarray(probs) * weights).argmax(axis=1)


def fit_decision_alpha(
    probs: np.ndarray, labels: Sequence[int] | np.ndarray, prior: Sequence[float]
) -> tuple[float, dict[float, float]]:
    """The alpha of ALPHA_GRID with the best balanced accuracy (the smallest on a tie, i.e.
    the decision closest to plain argmax), and the whole curve for the card."""
    y = np.asarray(labels)
    k = np.asarray(probs).shape[1]
    curve = {
        alpha: balanced_accuracy(y, decide(probs, decision_weights(prior, alpha)), k)
        for alpha in ALPHA_GRID
    }
    best = max(curve.values())
    alpha = min(a for a, score in curve.items() if score >= best - 1e-12)
    return alpha, curve
