"""ml.metrics agrees with the ISIC challenge's own scoring package on the same predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from isic_challenge_scoring.metrics import auc, balanced_multiclass_accuracy

from ml.calibration import softmax
from ml.classes import CLASSES, MELANOMA_INDEX
from ml.metrics import balanced_accuracy, roc_auc


def _predictions(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.choice(7, size=900, p=[0.03, 0.05, 0.11, 0.01, 0.11, 0.67, 0.02])
    logits = rng.normal(size=(len(labels), 7))
    logits[np.arange(len(labels)), labels] += rng.uniform(0, 3, size=len(labels))
    return labels, softmax(logits)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_balanced_accuracy_matches_isic_challenge_scoring(seed):
    labels, probs = _predictions(seed)
    columns = [c.upper() for c in CLASSES]
    truth = pd.DataFrame(np.eye(7)[labels], columns=columns)
    predicted = pd.DataFrame(probs, columns=columns)
    weights = pd.Series(np.ones(len(labels)))

    official = balanced_multiclass_accuracy(truth, predicted, weights)

    assert balanced_accuracy(labels, probs.argmax(1), 7) == pytest.approx(official, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_melanoma_auc_matches_isic_challenge_scoring(seed):
    labels, probs = _predictions(seed)
    is_mel = pd.Series((labels == MELANOMA_INDEX).astype(float))
    p_mel = pd.Series(probs[:, MELANOMA_INDEX])

    official = auc(is_mel, p_mel, pd.Series(np.ones(len(labels))))

    assert roc_auc(is_mel.to_numpy(), p_mel.to_numpy()) == pytest.approx(official, abs=1e-9)
