"""v2's calibration and balanced decision, fitted on the select half (ml.selection)."""

from __future__ import annotations

import numpy as np
import pytest

from ml.calibration import softmax
from ml.metrics import balanced_accuracy, top_label_ece
from ml.selection import calibrate, decide, decision_weights, fit_bcts, fit_decision_alpha


def _sample(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cumulative = softmax(logits).cumsum(1)
    return (rng.random((len(cumulative), 1)) > cumulative).sum(1)


def test_bcts_recovers_temperature_and_a_class_shift():
    rng = np.random.default_rng(1)
    true_logits = rng.normal(0, 2, size=(20000, 4))
    true_logits[:, 0] += 1.5  # class 0 is common in the world
    labels = _sample(true_logits, rng)
    # The network is 2x overconfident and, trained on balanced batches, ignores the prior.
    seen = (true_logits - np.array([1.5, 0, 0, 0])) * 2.0

    temperature, bias = fit_bcts(seen, labels)

    assert temperature == pytest.approx(2.0, rel=0.1)
    assert bias[0] - bias[1:].mean() == pytest.approx(1.5, abs=0.2)
    assert top_label_ece(labels, calibrate(seen, temperature, bias)) < top_label_ece(
        labels, calibrate(seen, 1.0)
    )


def test_balanced_decision_raises_balanced_accuracy_on_skewed_data():
    rng = np.random.default_rng(2)
    prior = np.array([0.9, 0.05, 0.05])
    labels = rng.choice(3, size=6000, p=prior)
    evidence = rng.normal(0, 1.2, size=(len(labels), 3))
    evidence[np.arange(len(labels)), labels] += 1.5
    probs = softmax(evidence + np.log(prior))  # calibrated posteriors at this prior

    alpha, curve = fit_decision_alpha(probs, labels, prior)

    plain = balanced_accuracy(labels, probs.argmax(1), 3)
    balanced = balanced_accuracy(labels, decide(probs, decision_weights(prior, alpha)), 3)
    assert alpha > 0.5
    assert balanced > plain + 0.1
    assert curve[0.0] == pytest.approx(plain)


def test_alpha_zero_is_plain_argmax():
    probs = softmax(np.random.default_rng(3).normal(size=(50, 7)))

    weights = decision_weights(np.full(7, 1 / 7) + np.arange(7) / 100, 0.0)

    assert (decide(probs, weights) == probs.argmax(1)).all()
