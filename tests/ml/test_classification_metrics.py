"""ml.metrics agrees with scikit-learn where scikit-learn has the metric, and with hand
arithmetic where it does not."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from ml import metrics
from ml.calibration import softmax


@pytest.fixture
def case():
    rng = np.random.default_rng(7)
    n = 400
    labels = rng.integers(0, 7, n)
    logits = rng.normal(size=(n, 7))
    logits[np.arange(n), labels] += 1.2
    return labels, softmax(logits)


def test_balanced_accuracy_accuracy_recall_and_confusion_match_sklearn(case):
    labels, probs = case
    predicted = probs.argmax(1)

    assert metrics.balanced_accuracy(labels, predicted, 7) == pytest.approx(
        skm.balanced_accuracy_score(labels, predicted)
    )
    assert metrics.accuracy(labels, predicted) == pytest.approx(
        skm.accuracy_score(labels, predicted)
    )
    assert metrics.per_class_recall(labels, predicted, 7) == pytest.approx(
        skm.recall_score(labels, predicted, average=None).tolist()
    )
    np.testing.assert_array_equal(
        metrics.confusion_matrix(labels, predicted, 7),
        skm.confusion_matrix(labels, predicted, labels=range(7)),
    )


def test_one_vs_rest_auc_matches_sklearn(case):
    labels, probs = case

    per_class, macro = metrics.one_vs_rest_auc(labels, probs)

    expected = [skm.roc_auc_score(labels == c, probs[:, c]) for c in range(7)]
    assert list(per_class.values()) == pytest.approx(expected)
    assert macro == pytest.approx(skm.roc_auc_score(labels, probs, multi_class="ovr"))


def test_auc_and_roc_curve_handle_tied_scores_like_sklearn(case):
    labels, probs = case
    is_mel, scores = labels == 4, np.round(probs[:, 4], 1)

    fpr, tpr, _ = metrics.roc_curve(is_mel, scores)
    sk_fpr, sk_tpr, _ = skm.roc_curve(is_mel, scores, drop_intermediate=False)

    assert metrics.roc_auc(is_mel, scores) == pytest.approx(skm.roc_auc_score(is_mel, scores))
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)


def test_auc_of_a_class_absent_from_labels_is_none_and_skipped_in_macro(case):
    labels, probs = case
    labels = np.where(labels == 3, 5, labels)  # no dermatofibroma left

    per_class, macro = metrics.one_vs_rest_auc(labels, probs)

    assert per_class["df"] is None
    defined = [v for v in per_class.values() if v is not None]
    assert macro == pytest.approx(np.mean(defined))
    assert metrics.balanced_accuracy(labels, probs.argmax(1), 7) == pytest.approx(
        np.mean([r for r in metrics.per_class_recall(labels, probs.argmax(1), 7) if r is not None])
    )


def test_sensitivity_and_specificity_at_a_threshold():
    is_mel = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.6, 0.4, 0.2, 0.5, 0.3, 0.1, 0.1, 0.05])

    sens, spec = metrics.sensitivity_specificity(is_mel, scores, 0.4)

    assert sens == pytest.approx(3 / 4)
    assert spec == pytest.approx(4 / 5)


def test_specificity_at_sensitivity_is_the_best_achievable(case):
    labels, probs = case
    is_mel, scores = labels == 4, probs[:, 4]

    for target in (0.90, 0.95):
        best = max(
            spec
            for t in np.unique(scores)
            for sens, spec in [metrics.sensitivity_specificity(is_mel, scores, t)]
            if sens >= target
        )
        assert metrics.specificity_at_sensitivity(is_mel, scores, target) == pytest.approx(best)


def test_ece_by_hand():
    # Two bins used: 0.95 (3 images, 2 right) and 0.25 (2 images, 1 right).
    correct = np.array([1, 1, 0, 1, 0])
    confidence = np.array([0.95, 0.95, 0.95, 0.25, 0.25])

    expected = 3 / 5 * abs(2 / 3 - 0.95) + 2 / 5 * abs(1 / 2 - 0.25)

    assert metrics.expected_calibration_error(correct, confidence, 15) == pytest.approx(expected)


def test_top_label_ece_of_perfectly_confident_right_answers_is_zero():
    labels = np.array([0, 1, 2])
    probs = np.eye(7)[labels]

    assert metrics.top_label_ece(labels, probs) == pytest.approx(0.0)


def test_reports_are_json_ready_for_multiclass_and_binary_labels(case):
    labels, probs = case

    report = metrics.multiclass_report(labels, probs, {"moderate": 0.1, "high": 0.3})
    binary = metrics.melanoma_report(labels == 4, probs[:, 4], {"moderate": 0.1})

    json.dumps(report, allow_nan=False)
    json.dumps(binary, allow_nan=False)
    assert report["melanoma"]["auc"] == pytest.approx(skm.roc_auc_score(labels == 4, probs[:, 4]))
    assert set(binary["at_threshold"]) == {"moderate"}
