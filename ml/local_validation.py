"""A model's figures on a clinic's own confirmed cases, with bootstrap confidence intervals.

The portal gathers the cases (images with a histology result, or a doctor's signed diagnosis
where there is no histology) and `measure`s the versions it compares on the same cases; the
figures are the ones `ml.evaluate` reports (`ml.metrics`), plus the melanoma sensitivity at the
*triage boundary* (the line between "routine" and everything else, which is where a missed
melanoma goes unseen) and the share of benign lesions left routine there (its specificity).
For a card with triage (v2) the boundary is the triage itself; for a card without (v1) the
moderate melanoma risk tier, which the same threshold set.

Confidence intervals are percentile bootstrap intervals that resample *lesions*, not images: a
lesion photographed three times is one piece of evidence, as in the lesion-grouped split the
models were trained and validated with. Every version measured with the same seed sees the same
resamples, so their intervals are comparable.

`card_figures` reads the same figures from a model card's shipped validation, the fallback the
promotion gate uses while a clinic has too few confirmed melanomas of its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ml import metadata as meta
from ml.classes import CLASSES, MELANOMA_INDEX
from ml.metrics import balanced_accuracy, roc_auc
from ml.served import CardModel as Classifier  # any served runtime; no torch import
from ml.triage import triage

BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95
# Wilson's interval at 95%: the card's figures come as a rate and a count, not as resamples.
Z_95 = 1.959964
FIGURES = ("balanced_accuracy", "melanoma_auc", "melanoma_sensitivity", "benign_specificity")
# The lesions that need no referral: flagging a BCC or an actinic keratosis above routine is
# right, so only these count against the boundary's specificity (the card's
# benign_specificity_routine).
BENIGN = tuple(CLASSES.index(code) for code in ("bkl", "df", "nv", "vasc"))


def at_triage_boundary(classifier: Classifier, probs: np.ndarray) -> np.ndarray:
    """Per image, whether the result is above the triage boundary (not routine)."""
    if classifier.triage_thresholds is not None:
        levels = [
            triage(dict(zip(CLASSES, map(float, row), strict=True)), classifier.triage_thresholds)
            for row in probs
        ]
        return np.array([level.level != "routine" for level in levels], dtype=bool)
    return probs[:, MELANOMA_INDEX] >= classifier.thresholds.moderate


def boundary_words(classifier: Classifier) -> str:
    """The triage boundary of this version, in words, for the report."""
    if classifier.triage_thresholds is not None:
        return "triage above routine (soon or urgent)"
    return f"melanoma risk tier moderate or high (p(mel) >= {classifier.thresholds.moderate:.3f})"


def _figures(
    targets: np.ndarray, probs: np.ndarray, shown: np.ndarray, flagged: np.ndarray
) -> dict[str, float | None]:
    is_mel = targets == MELANOMA_INDEX
    benign = np.isin(targets, BENIGN)
    return {
        "balanced_accuracy": balanced_accuracy(targets, shown, len(CLASSES)),
        "melanoma_auc": roc_auc(is_mel, probs[:, MELANOMA_INDEX]),
        "melanoma_sensitivity": float(flagged[is_mel].mean()) if is_mel.any() else None,
        "benign_specificity": float((~flagged[benign]).mean()) if benign.any() else None,
    }


def bootstrap_intervals(
    targets: np.ndarray,
    probs: np.ndarray,
    shown: np.ndarray,
    flagged: np.ndarray,
    groups: Sequence[object],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, list[float] | None]:
    """Percentile intervals of each figure over `resamples` draws of whole groups (lesions)
    with replacement. A figure undefined in a draw (no melanoma drawn) is left out of that
    draw; None when it is undefined in every draw."""
    keys = np.asarray([str(g) for g in groups])
    unique = np.unique(keys)
    members = [np.flatnonzero(keys == key) for key in unique]
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {name: [] for name in FIGURES}
    for _ in range(resamples):
        drawn = rng.integers(0, len(unique), len(unique))
        i = np.concatenate([members[g] for g in drawn])
        for name, value in _figures(targets[i], probs[i], shown[i], flagged[i]).items():
            if value is not None:
                samples[name].append(value)
    tail = (1 - CONFIDENCE) / 2 * 100
    return {
        name: (
            [round(float(v), 4) for v in np.percentile(values, [tail, 100 - tail])]
            if values
            else None
        )
        for name, values in samples.items()
    }


@dataclass(frozen=True)
class Case:
    """One confirmed case: how to open its image (opened when measured, a few at a time, so a
    clinic's whole set never sits in memory), the lesion's age/sex/site, the class index of
    its confirmed diagnosis, and the lesion it belongs to (the bootstrap's unit)."""

    load: Callable[[], Image.Image]
    metadata: meta.LesionMetadata | None
    target: int
    group: object


def _report(
    classifier: Classifier,
    y: np.ndarray,
    probs: np.ndarray,
    groups: Sequence[object],
    seconds: float,
    resamples: int,
    seed: int,
) -> dict:
    shown = np.array([classifier.decide(row) for row in probs], dtype=np.int64)
    flagged = at_triage_boundary(classifier, probs)
    point = _figures(y, probs, shown, flagged)
    intervals = bootstrap_intervals(
        y, probs, shown, flagged, groups, resamples=resamples, seed=seed
    )
    is_mel = y == MELANOMA_INDEX
    benign = np.isin(y, BENIGN)
    counts = {
        "melanoma_sensitivity": [int(flagged[is_mel].sum()), int(is_mel.sum())],
        "benign_specificity": [int((~flagged[benign]).sum()), int(benign.sum())],
    }
    figures = {
        name: {
            "value": None if value is None else round(value, 4),
            "ci95": intervals[name],
            **({"count": counts[name]} if name in counts else {}),
        }
        for name, value in point.items()
    }
    return {
        "version": classifier.version,
        "boundary": boundary_words(classifier),
        "n": int(len(y)),
        "n_melanoma": int(is_mel.sum()),
        "support": {code: int((y == c).sum()) for c, code in enumerate(CLASSES)},
        **figures,
        "ms_per_image": round(seconds * 1000 / len(y), 1),
    }


def measure(
    classifiers: Sequence[Classifier],
    cases: Sequence[Case],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    chunk: int = 32,
) -> list[dict]:
    """Each version's figures on the same cases, each figure with its interval and the counts
    behind it, in the order of `classifiers`.

    The images go through each model as in the portal (its preprocessing, calibration,
    decision and triage), with the lesion's age, sex and site for a model that reads them;
    each image is opened once for all the versions.
    """
    if not cases:
        raise ValueError("no cases to measure")
    rows: list[list[list[float]]] = [[] for _ in classifiers]
    seconds = [0.0 for _ in classifiers]
    for start in range(0, len(cases), chunk):
        part = cases[start : start + chunk]
        images = [case.load() for case in part]
        records = [case.metadata for case in part]
        for k, classifier in enumerate(classifiers):
            began = time.perf_counter()
            predictions = classifier.predict_batch(images, batch_size=chunk, metadata=records)
            seconds[k] += time.perf_counter() - began
            rows[k].extend([p.probabilities[c] for c in CLASSES] for p in predictions)
    y = np.array([case.target for case in cases], dtype=np.int64)
    groups = [case.group for case in cases]
    return [
        _report(classifier, y, np.array(rows[k]), groups, seconds[k], resamples, seed)
        for k, classifier in enumerate(classifiers)
    ]


def wilson_interval(successes: int, n: int, z: float = Z_95) -> list[float] | None:
    """Wilson's score interval of a proportion; None for n = 0."""
    if n <= 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def card_figures(card: dict) -> dict | None:
    """The shipped validation figures of a card in `measure`'s shape (no bootstrap: the
    sensitivity's interval is Wilson's, from its count), or None for a card without them.

    v2 cards report the triage's melanoma sensitivity on the report half; v1 cards the
    moderate risk tier's on the whole validation split, which the same threshold sets.
    """
    validation = card.get("validation") or {}
    melanoma = validation.get("melanoma") or {}
    n_mel = melanoma.get("n_melanoma")
    balanced = validation.get("balanced_accuracy")
    report_half = (card.get("triage") or {}).get("report_half") or {}
    if "melanoma_sensitivity_not_routine" in report_half:
        sensitivity = report_half["melanoma_sensitivity_not_routine"]
        boundary = "triage above routine (soon or urgent)"
    else:
        sensitivity = ((melanoma.get("at_threshold") or {}).get("moderate") or {}).get(
            "sensitivity"
        )
        boundary = "melanoma risk tier moderate or high"
    if balanced is None or sensitivity is None or not n_mel:
        return None
    caught = round(sensitivity * n_mel)
    return {
        "version": card.get("version", ""),
        "boundary": boundary,
        "measured_on": card.get("validation_half") or "the validation split",
        "n": int(validation.get("n", 0)),
        "n_melanoma": int(n_mel),
        "balanced_accuracy": {"value": float(balanced), "ci95": None},
        "melanoma_auc": {"value": melanoma.get("auc"), "ci95": None},
        "melanoma_sensitivity": {
            "value": float(sensitivity),
            "ci95": wilson_interval(caught, int(n_mel)),
            "count": [caught, int(n_mel)],
        },
    }
