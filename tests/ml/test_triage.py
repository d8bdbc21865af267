"""Clinical triage covers every skin cancer: melanoma, BCC and AK/Bowen's."""

from __future__ import annotations

import numpy as np
import pytest

from ml.classes import CLASSES
from ml.triage import TriageThresholds, fit_nmsc_threshold, measure, triage

THRESHOLDS = TriageThresholds(moderate=0.05, high=0.7, nmsc=0.3)


def _probs(**given: float) -> dict[str, float]:
    rest = (1 - sum(given.values())) / (len(CLASSES) - len(given))
    return {code: given.get(code, rest) for code in CLASSES}


def test_a_dominant_bcc_is_never_routine():
    result = triage(_probs(bcc=0.964, mel=0.01), THRESHOLDS)

    assert result.level == "soon"
    assert result.reason == "BCC 96%"


def test_melanoma_suspected_is_urgent_with_its_probability():
    result = triage(_probs(mel=0.72), THRESHOLDS)

    assert (result.level, result.reason) == ("urgent", "Melanoma 72%")


def test_melanoma_not_excluded_is_soon():
    result = triage(_probs(mel=0.1, nv=0.85), THRESHOLDS)

    assert (result.level, result.reason) == ("soon", "Melanoma 10% (not excluded)")


def test_actinic_keratosis_counts_with_bcc():
    result = triage(_probs(akiec=0.2, bcc=0.15, mel=0.01), THRESHOLDS)

    assert result.level == "soon"
    assert result.reason == "AK/Bowen's 20%"


def test_a_clear_naevus_is_routine():
    assert triage(_probs(nv=0.97, mel=0.01, bcc=0.0, akiec=0.0), THRESHOLDS).level == "routine"


def test_the_nmsc_boundary_catches_the_asked_share_of_bcc_and_akiec():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 700)
    logits = rng.normal(size=(700, 7))
    logits[np.arange(700), labels] += 2.5
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)

    boundary = fit_nmsc_threshold(labels, probs)
    report = measure(labels, probs, TriageThresholds(0.05, 0.7, boundary))

    assert report["nmsc_sensitivity_not_routine"] >= 0.95
    assert sum(report["by_class"]["bcc"].values()) == int((labels == 1).sum())
    malignant = np.isin(labels, [0, 1, 4])
    assert report["malignant_any_sensitivity_not_routine"] == pytest.approx(
        sum(
            report["by_class"][code][level]
            for code in ("akiec", "bcc", "mel")
            for level in ("soon", "urgent")
        )
        / malignant.sum()
    )


# --- served: the Prediction carries the triage of its card ----------------------------------


def _vector(**given: float) -> np.ndarray:
    probs = _probs(**given)
    return np.array([probs[code] for code in CLASSES])


def test_the_shipped_model_triages_its_predictions_and_a_dominant_bcc_is_never_routine(
    shipped_classifier,
):
    if shipped_classifier.triage_thresholds is None:
        pytest.skip(f"{shipped_classifier.version} has no triage in its card")
    boundary = shipped_classifier.triage_thresholds.nmsc

    bcc = shipped_classifier._prediction(_vector(bcc=0.964, mel=0.004), {})

    assert bcc.triage is not None
    assert (bcc.triage.level, bcc.triage.reason) == ("soon", "BCC 96%")
    assert bcc.risk_tier == "low"  # what the melanoma-only tier called it
    for p_bcc in np.linspace(boundary, 1.0, 25):
        rest = {"mel": 0.0, "akiec": 0.0}
        prediction = shipped_classifier._prediction(_vector(bcc=float(p_bcc), **rest), {})
        assert prediction.triage.level != "routine", p_bcc


def test_a_card_without_triage_gives_no_triage(tiny_classifier):
    assert "triage" not in tiny_classifier.card
    prediction = tiny_classifier._prediction(_vector(bcc=0.964), {})
    assert prediction.triage is None and prediction.risk_tier in ("low", "moderate", "high")
