"""Nearest neighbours among unit vectors by cosine distance: the similar-case lookup.

NumPy only (no torch), so the web processes that search import nothing heavy. A brute-force
scan: one matrix-vector product and a partial sort, exact, a few milliseconds at 100,000
vectors of 64 dimensions (bench/similar_cases.py).
"""

from __future__ import annotations

import numpy as np


def nearest(matrix: np.ndarray, query: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The `count` rows of `matrix` (n, dims; unit rows) nearest to `query` (dims; unit) by
    cosine distance, 1 - cos: their row indices and distances, nearest first (ties in row
    order)."""
    if len(matrix) == 0 or count <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    distances = 1.0 - matrix @ np.asarray(query, dtype=np.float32)
    count = min(count, len(distances))
    if count < len(distances):
        picked = np.argpartition(distances, count - 1)[:count]
    else:
        picked = np.arange(len(distances))
    order = picked[np.lexsort((picked, distances[picked]))]
    return order, distances[order]
