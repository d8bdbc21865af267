"""Melanoma figures by patient group: counts always, figures only where cases exist."""

from __future__ import annotations

import numpy as np
import pytest

from ml.breakdowns import age_band, group_keys, melanoma_by_group
from ml.metadata import parse


def test_groups_report_counts_and_figures_from_their_own_cases():
    records = [parse(25, "male", "back"), parse(75, "female", "face"), parse(None, None, None)] * 2
    is_mel = np.array([1, 0, 0, 0, 1, 0])
    p_mel = np.array([0.9, 0.2, 0.1, 0.6, 0.3, 0.05])

    table = melanoma_by_group(is_mel, p_mel, 0.5, group_keys(records, ["a"] * 6))

    assert table["age"]["under 30"] == {
        "n": 2,
        "n_melanoma": 1,
        "auc": 1.0,
        "sensitivity": 1.0,
        "specificity": 0.0,
    }
    assert table["site"]["head/neck"]["sensitivity"] == 0.0  # its melanoma scored 0.3
    assert table["sex"]["unknown"]["n_melanoma"] == 0
    assert table["sex"]["unknown"]["sensitivity"] is None
    assert table["sex"]["unknown"]["auc"] is None
    assert table["source"]["a"]["n"] == 6


@pytest.mark.parametrize(
    "age, band",
    [(None, "unknown"), (0, "under 30"), (30, "30-49"), (69.9, "50-69"), (90, "70 and over")],
)
def test_age_bands(age, band):
    assert age_band(age) == band
