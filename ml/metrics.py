"""Classification metrics for the lesion classifier, in plain numpy.

Balanced accuracy (mean per-class recall) is the headline number because HAM10000 is two
thirds naevi: plain accuracy rewards a model that calls everything a naevus. Melanoma gets its
own binary metrics because the portal's risk tier is a melanoma decision, and a missed
melanoma costs far more than an extra excision.

Every function takes integer labels (class indices of `ml.classes.CLASSES`) and probability
arrays of shape (n, 7); the binary functions take `is_melanoma` as 0/1 and a score per image.
Results are plain floats, lists and dicts so they serialise to JSON as they are; a value that
cannot be computed (an AUC for a class absent from the labels) is `None`, not NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ml.classes import CLASSES, MELANOMA_INDEX

ECE_BINS: int = 15


def _labels(labels: Sequence[int] | np.ndarray) -> np.ndarray:
    return np.asarray(labels, dtype=np.int64).reshape(-1)


def _probs(probabilities: np.ndarray) -> np.ndarray:
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"probabilities must be (n, classes), got shape {probs.shape}")
    return probs


def confusion_matrix(
    labels: Sequence[int] | np.ndarray, predictions: Sequence[int] | np.ndarray, n_classes: int
) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class (scikit-learn's orientation)."""
    y, p = _labels(labels), _labels(predictions)
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (y, p), 1)
    return matrix


def per_class_recall(
    labels: Sequence[int] | np.ndarray, predictions: Sequence[int] | np.ndarray, n_classes: int
) -> list[float | None]:
    """Recall of each class; None for a class with no images, whose recall is undefined."""
    matrix = confusion_matrix(labels, predictions, n_classes)
    support = matrix.sum(axis=1)
    return [float(matrix[c, c] / support[c]) if support[c] else None for c in range(n_classes)]


def balanced_accuracy(
    labels: Sequence[int] | np.ndarray, predictions: Sequence[int] | np.ndarray, n_classes: int
) -> float:
    """Mean recall over the classes present in `labels` (as scikit-learn does), so a test set
    without, say, dermatofibromas is scored on the classes it has instead of getting a zero."""
    recalls = [r for r in per_class_recall(labels, predictions, n_classes) if r is not None]
    return float(np.mean(recalls))


def accuracy(labels: Sequence[int] | np.ndarray, predictions: Sequence[int] | np.ndarray) -> float:
    return float(np.mean(_labels(labels) == _labels(predictions)))


def roc_auc(
    is_positive: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray
) -> float | None:
    """Area under the ROC curve as the Mann-Whitney statistic: the chance that a random
    positive scores above a random negative, ties counting half. None when one side is empty."""
    y = np.asarray(is_positive).astype(bool).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_scores = s[order]
    # Average ranks over ties: each run of equal scores shares the mean of its positions.
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(s)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(
    is_positive: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, threshold) for 'positive when score >= t',
    one point per distinct score, starting at (0, 0) with threshold +inf."""
    y = np.asarray(is_positive).astype(bool).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_run = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(y)[last_of_run]
    fp = np.cumsum(~y)[last_of_run]
    n_pos, n_neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return (
        np.r_[0.0, fp / n_neg],
        np.r_[0.0, tp / n_pos],
        np.r_[np.inf, s[last_of_run]],
    )


def one_vs_rest_auc(
    labels: Sequence[int] | np.ndarray, probabilities: np.ndarray
) -> tuple[dict[str, float | None], float | None]:
    """Per-class one-vs-rest AUC keyed by class code, and their macro mean over the classes
    where it is defined (ISIC 2018 Task 3 reported the same per-class AUCs)."""
    y, probs = _labels(labels), _probs(probabilities)
    per_class = {code: roc_auc(y == c, probs[:, c]) for c, code in enumerate(CLASSES)}
    defined = [v for v in per_class.values() if v is not None]
    return per_class, (float(np.mean(defined)) if defined else None)


def sensitivity_specificity(
    is_melanoma: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, threshold: float
) -> tuple[float | None, float | None]:
    """Sensitivity and specificity of 'melanoma when score >= threshold'."""
    y = np.asarray(is_melanoma).astype(bool).reshape(-1)
    flagged = np.asarray(scores, dtype=np.float64).reshape(-1) >= threshold
    sens = float(flagged[y].mean()) if y.any() else None
    spec = float((~flagged[~y]).mean()) if (~y).any() else None
    return sens, spec


def threshold_for_sensitivity(
    is_melanoma: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, target: float
) -> float:
    """The largest threshold t for which 'melanoma when score >= t' still finds at least
    `target` of the melanomas. Largest, because every lower threshold with the same
    sensitivity only adds false alarms."""
    y = np.asarray(is_melanoma).astype(bool).reshape(-1)
    positives = np.sort(np.asarray(scores, dtype=np.float64).reshape(-1)[y])[::-1]
    if len(positives) == 0:
        raise ValueError("no melanoma among the labels: a sensitivity threshold is undefined")
    # Need k positives at or above t; the k-th highest positive score is the largest such t.
    # The epsilon keeps 0.95 * 20 = 19.000000000000004 from asking for 20.
    k = max(1, math.ceil(target * len(positives) - 1e-9))
    return float(positives[k - 1])


def threshold_for_specificity(
    is_melanoma: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, target: float
) -> float:
    """The smallest threshold t for which 'melanoma when score >= t' leaves at least `target`
    of the non-melanomas below it. Smallest, because it catches the most melanomas for that
    false-alarm rate."""
    y = np.asarray(is_melanoma).astype(bool).reshape(-1)
    negatives = np.sort(np.asarray(scores, dtype=np.float64).reshape(-1)[~y])
    if len(negatives) == 0:
        raise ValueError("no non-melanoma among the labels: a specificity threshold is undefined")
    m = max(1, math.ceil(target * len(negatives) - 1e-9))
    # Strictly above the m-th lowest negative, so that one counts as 'not flagged'.
    return float(np.nextafter(negatives[m - 1], np.inf))


def specificity_at_sensitivity(
    is_melanoma: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, target: float
) -> float | None:
    """Best specificity reachable while keeping melanoma sensitivity >= target: the number a
    dermatologist asks of a triage tool ('how many benign lesions does it send me if it may
    miss at most 5% of melanomas?')."""
    y = np.asarray(is_melanoma).astype(bool).reshape(-1)
    if not y.any() or y.all():
        return None
    threshold = threshold_for_sensitivity(y, scores, target)
    return sensitivity_specificity(y, scores, threshold)[1]


def expected_calibration_error(
    correct: Sequence[bool] | np.ndarray,
    confidence: Sequence[float] | np.ndarray,
    n_bins: int = ECE_BINS,
) -> float:
    """ECE of Guo et al. (2017): |accuracy - confidence| per equal-width confidence bin,
    weighted by the bin's share of images. Bins are (lo, hi], the first also takes 0."""
    hit = np.asarray(correct, dtype=np.float64).reshape(-1)
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
    bins = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        inside = bins == b
        if inside.any():
            ece += inside.mean() * abs(hit[inside].mean() - conf[inside].mean())
    return float(ece)


def reliability_bins(
    correct: Sequence[bool] | np.ndarray,
    confidence: Sequence[float] | np.ndarray,
    n_bins: int = ECE_BINS,
) -> list[dict[str, float | int]]:
    """Per-bin counts, mean confidence and accuracy: the data of a reliability diagram."""
    hit = np.asarray(correct, dtype=np.float64).reshape(-1)
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
    bins = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        inside = bins == b
        count = int(inside.sum())
        rows.append(
            {
                "lower": b / n_bins,
                "upper": (b + 1) / n_bins,
                "count": count,
                "confidence": float(conf[inside].mean()) if count else 0.0,
                "accuracy": float(hit[inside].mean()) if count else 0.0,
            }
        )
    return rows


def top_label_ece(
    labels: Sequence[int] | np.ndarray, probabilities: np.ndarray, n_bins: int = ECE_BINS
) -> float:
    """ECE of the arg-max class's probability against whether the arg-max is right."""
    y, probs = _labels(labels), _probs(probabilities)
    return expected_calibration_error(probs.argmax(1) == y, probs.max(1), n_bins)


def binary_ece(
    is_melanoma: Sequence[int] | np.ndarray,
    p_melanoma: Sequence[float] | np.ndarray,
    n_bins: int = ECE_BINS,
) -> float:
    """Top-label ECE of the two-class problem melanoma / not melanoma."""
    y = np.asarray(is_melanoma).astype(bool).reshape(-1)
    p = np.asarray(p_melanoma, dtype=np.float64).reshape(-1)
    return expected_calibration_error((p >= 0.5) == y, np.maximum(p, 1 - p), n_bins)


def melanoma_report(
    is_melanoma: Sequence[int] | np.ndarray,
    p_melanoma: Sequence[float] | np.ndarray,
    thresholds: dict[str, float] | None = None,
) -> dict:
    """Every melanoma-vs-rest metric: AUC, specificity at 90% and 95% sensitivity, binary
    ECE, and sensitivity/specificity at each named threshold (the risk-tier boundaries)."""
    y = np.asarray(is_melanoma).astype(bool).reshape(-1)
    p = np.asarray(p_melanoma, dtype=np.float64).reshape(-1)
    report: dict = {
        "n": int(len(y)),
        "n_melanoma": int(y.sum()),
        "auc": roc_auc(y, p),
        "specificity_at_90_sensitivity": specificity_at_sensitivity(y, p, 0.90),
        "specificity_at_95_sensitivity": specificity_at_sensitivity(y, p, 0.95),
        "ece": binary_ece(y, p),
        "at_threshold": {},
    }
    for name, threshold in (thresholds or {}).items():
        sens, spec = sensitivity_specificity(y, p, threshold)
        report["at_threshold"][name] = {
            "threshold": float(threshold),
            "sensitivity": sens,
            "specificity": spec,
        }
    return report


def multiclass_report(
    labels: Sequence[int] | np.ndarray,
    probabilities: np.ndarray,
    thresholds: dict[str, float] | None = None,
    predicted: Sequence[int] | np.ndarray | None = None,
) -> dict:
    """All seven-class metrics plus the melanoma-vs-rest report, JSON-ready. `predicted`:
    the class each image is shown as, when the decision is not the plain arg-max (v2's
    balanced decision); top-label ECE stays that of the arg-max probability."""
    y, probs = _labels(labels), _probs(probabilities)
    n_classes = probs.shape[1]
    predicted = probs.argmax(1) if predicted is None else _labels(predicted)
    recalls = per_class_recall(y, predicted, n_classes)
    per_class_auc, macro_auc = one_vs_rest_auc(y, probs)
    return {
        "n": int(len(y)),
        "support": {code: int((y == c).sum()) for c, code in enumerate(CLASSES)},
        "balanced_accuracy": balanced_accuracy(y, predicted, n_classes),
        "accuracy": accuracy(y, predicted),
        "per_class_recall": dict(zip(CLASSES, recalls, strict=True)),
        "per_class_auc": per_class_auc,
        "macro_auc": macro_auc,
        "ece_top_label": top_label_ece(y, probs),
        "confusion_matrix": confusion_matrix(y, predicted, n_classes).tolist(),
        "melanoma": melanoma_report(y == MELANOMA_INDEX, probs[:, MELANOMA_INDEX], thresholds),
    }
