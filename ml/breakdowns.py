"""Melanoma detection by patient group: the breakdowns a clinician asks for.

A model can look good on average and be poor for a group (acral lesions, the very old, one
dermatoscope). Each group gets its counts, melanoma AUC where it has both kinds, and
sensitivity / specificity at the tier boundary that means "do not miss" (moderate), so that a
weak group is visible with the number of cases its figure rests on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ml.metadata import LesionMetadata
from ml.metrics import roc_auc

AGE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("under 30", 0, 30),
    ("30-49", 30, 50),
    ("50-69", 50, 70),
    ("70 and over", 70, 200),
)
UNKNOWN = "unknown"


def age_band(age: float | None) -> str:
    if age is None:
        return UNKNOWN
    return next(name for name, lo, hi in AGE_BANDS if lo <= age < hi)


def group_keys(
    metadata: Sequence[LesionMetadata], sources: Sequence[str] | None = None
) -> dict[str, list[str]]:
    """For each grouping (site, age band, sex, source), every image's group name."""
    keys = {
        "site": [m.site or UNKNOWN for m in metadata],
        "age": [age_band(m.age) for m in metadata],
        "sex": [m.sex or UNKNOWN for m in metadata],
    }
    if sources is not None:
        keys["source"] = [s or UNKNOWN for s in sources]
    return keys


def melanoma_by_group(
    is_melanoma: Sequence[int] | np.ndarray,
    p_melanoma: Sequence[float] | np.ndarray,
    threshold: float,
    keys: Mapping[str, Sequence[str]],
) -> dict[str, dict[str, dict]]:
    """{grouping: {group: {n, n_melanoma, auc, sensitivity, specificity}}} at `threshold`;
    a figure with no case to rest on is None, never a made-up 0 or 1."""
    y = np.asarray(is_melanoma).astype(bool)
    p = np.asarray(p_melanoma, dtype=np.float64)
    flagged = p >= threshold
    out: dict[str, dict[str, dict]] = {}
    for grouping, names in keys.items():
        names_arr = np.asarray(names)
        table = {}
        for name in sorted(set(names)):
            inside = names_arr == name
            mel, other = inside & y, inside & ~y
            table[name] = {
                "n": int(inside.sum()),
                "n_melanoma": int(mel.sum()),
                "auc": roc_auc(y[inside], p[inside]) if mel.any() and other.any() else None,
                "sensitivity": float(flagged[mel].mean()) if mel.any() else None,
                "specificity": float((~flagged[other]).mean()) if other.any() else None,
            }
        out[grouping] = table
    return out
