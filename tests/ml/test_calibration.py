"""Temperature scaling and the risk-tier thresholds do what the model card says they do."""

from __future__ import annotations

import numpy as np
import pytest

from ml.calibration import (
    RiskThresholds,
    fit_risk_thresholds,
    fit_temperature,
    negative_log_likelihood,
    softmax,
)
from ml.metrics import sensitivity_specificity, threshold_for_sensitivity


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, size=(20000, 7))
    cumulative = softmax(true_logits).cumsum(1)
    labels = (rng.random((len(cumulative), 1)) > cumulative).sum(1)
    overconfident = true_logits * 2.5  # what the network says, 2.5x too sure

    temperature = fit_temperature(overconfident, labels)

    assert temperature == pytest.approx(2.5, rel=0.05)
    assert negative_log_likelihood(overconfident, labels, temperature) < negative_log_likelihood(
        overconfident, labels, 1.0
    )


def test_temperature_keeps_the_top_class():
    logits = np.random.default_rng(1).normal(size=(50, 7))

    np.testing.assert_array_equal(softmax(logits, 3.0).argmax(1), logits.argmax(1))
    np.testing.assert_allclose(softmax(logits, 3.0).sum(1), 1.0)


@pytest.fixture
def melanoma_scores():
    rng = np.random.default_rng(3)
    is_mel = np.r_[np.ones(157, bool), np.zeros(1200, bool)]
    scores = np.r_[rng.beta(4, 2, 157), rng.beta(2, 5, 1200)]
    return is_mel, scores


def test_sensitivity_threshold_finds_95_percent_and_is_the_largest_that_does(melanoma_scores):
    is_mel, scores = melanoma_scores

    threshold = threshold_for_sensitivity(is_mel, scores, 0.95)

    assert sensitivity_specificity(is_mel, scores, threshold)[0] >= 0.95
    higher = np.nextafter(threshold, 1.0)
    assert sensitivity_specificity(is_mel, scores, higher)[0] < 0.95


def test_high_tier_keeps_95_percent_of_non_melanomas_out(melanoma_scores):
    is_mel, scores = melanoma_scores

    thresholds = fit_risk_thresholds(is_mel, scores)

    assert thresholds.high >= thresholds.moderate
    assert sensitivity_specificity(is_mel, scores, thresholds.high)[1] >= 0.95
    assert sensitivity_specificity(is_mel, scores, thresholds.moderate)[0] >= 0.95


def test_tiers_are_ordered_and_boundaries_inclusive():
    thresholds = RiskThresholds(moderate=0.1, high=0.4)

    assert [thresholds.tier(p) for p in (0.0, 0.0999, 0.1, 0.39, 0.4, 1.0)] == [
        "low",
        "low",
        "moderate",
        "moderate",
        "high",
        "high",
    ]
