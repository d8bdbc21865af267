"""Figures on a clinic's confirmed cases: lesion-level bootstrap intervals, the triage
boundary, and the shipped cards' figures the promotion gate falls back on."""

from __future__ import annotations

import numpy as np
import pytest

from ml.classes import MELANOMA_INDEX, class_index
from ml.local_validation import (
    Case,
    at_triage_boundary,
    bootstrap_intervals,
    card_figures,
    measure,
    wilson_interval,
)
from tests.ml.conftest import lesion_like_image


def _one_hot_probs(codes: list[str], confidence: float = 0.9) -> np.ndarray:
    probs = np.full((len(codes), 7), (1 - confidence) / 6)
    for row, code in enumerate(codes):
        probs[row, class_index(code)] = confidence
    return probs


def test_intervals_resample_lesions_so_three_images_of_one_lesion_count_once():
    # Four melanoma lesions, one caught; the caught one photographed ten times. Resampling
    # images would call sensitivity ~0.9; resampling lesions keeps it near 1 in 4.
    targets = np.array([MELANOMA_INDEX] * 13)
    flagged = np.array([True] * 10 + [False] * 3)
    groups = ["caught"] * 10 + ["a", "b", "c"]
    probs = _one_hot_probs(["mel"] * 13)
    shown = probs.argmax(1)

    intervals = bootstrap_intervals(targets, probs, shown, flagged, groups, resamples=400)

    low, high = intervals["melanoma_sensitivity"]
    assert low == 0.0 and high < 1.0
    assert intervals["melanoma_auc"] is None  # no non-melanoma in any draw


def test_the_same_seed_gives_the_same_intervals():
    targets = np.array([MELANOMA_INDEX, 5, 5, MELANOMA_INDEX, 2])
    probs = _one_hot_probs(["mel", "nv", "mel", "nv", "bkl"])
    flagged = probs[:, MELANOMA_INDEX] > 0.5
    groups = [1, 2, 3, 4, 5]

    first = bootstrap_intervals(targets, probs, probs.argmax(1), flagged, groups, resamples=200)
    again = bootstrap_intervals(targets, probs, probs.argmax(1), flagged, groups, resamples=200)

    assert first == again


def test_a_model_without_triage_uses_its_moderate_risk_tier_as_the_boundary(tiny_classifier):
    probs = np.zeros((2, 7))
    probs[0, MELANOMA_INDEX], probs[0, 5] = 0.11, 0.89  # moderate is 0.1 in the test card
    probs[1, MELANOMA_INDEX], probs[1, 5] = 0.09, 0.91

    assert at_triage_boundary(tiny_classifier, probs).tolist() == [True, False]


def test_measure_reports_each_version_on_the_same_cases_with_counts(tiny_classifier):
    cases = [
        Case(lambda seed=seed: lesion_like_image(seed=seed), None, target, group)
        for seed, (target, group) in enumerate(
            [(MELANOMA_INDEX, "a"), (MELANOMA_INDEX, "b"), (5, "c"), (2, "d")]
        )
    ]

    first, second = measure([tiny_classifier, tiny_classifier], cases, resamples=50)

    assert first["n"] == 4 and first["n_melanoma"] == 2
    assert first["melanoma_sensitivity"]["count"][1] == 2
    assert first["benign_specificity"]["count"][1] == 2  # the naevus and the keratosis
    assert {k: v for k, v in first.items() if k != "ms_per_image"} == {
        k: v for k, v in second.items() if k != "ms_per_image"
    }


def test_wilson_interval_of_a_perfect_score_stays_below_one_at_its_lower_end():
    low, high = wilson_interval(20, 20)
    assert 0.8 < low < 0.9 and high == 1.0
    assert wilson_interval(0, 0) is None


@pytest.mark.parametrize(
    ("card", "sensitivity"),
    [
        (  # v2: the triage's melanoma sensitivity on the report half
            {
                "validation": {"n": 715, "balanced_accuracy": 0.7257, "melanoma": {
                    "n_melanoma": 79, "auc": 0.89,
                    "at_threshold": {"moderate": {"sensitivity": 0.9}},
                }},
                "triage": {"report_half": {"melanoma_sensitivity_not_routine": 0.9747}},
            },
            0.9747,
        ),
        (  # v1: the moderate risk tier's
            {
                "validation": {"n": 1431, "balanced_accuracy": 0.6941, "melanoma": {
                    "n_melanoma": 159, "auc": 0.87,
                    "at_threshold": {"moderate": {"sensitivity": 0.956}},
                }},
            },
            0.956,
        ),
    ],
)  # fmt: skip
def test_card_figures_read_the_sensitivity_at_the_triage_boundary(card, sensitivity):
    figures = card_figures(card)

    assert figures["melanoma_sensitivity"]["value"] == sensitivity
    low, high = figures["melanoma_sensitivity"]["ci95"]
    assert low < sensitivity <= high
    assert figures["balanced_accuracy"]["value"] == card["validation"]["balanced_accuracy"]


def test_a_card_without_validation_figures_has_none():
    assert card_figures({"version": "x"}) is None
