"""The one percentile every benchmark reports, so that a p95 means the same in every table."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile by nearest rank: the smallest value with at least q% of the values
    at or below it (p95 of 20 values is the 19th, of 30 the 29th). Nearest rank reports a time
    that was measured, never one interpolated between two runs."""
    if not values:
        raise ValueError("no values to take a percentile of")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q * len(ordered) / 100)))
    return ordered[rank - 1]
