"""ml.embedding: the PCA reduction of the classifier's pooled features, and the lookup."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from ml.embedding import EMBEDDING_FILE, Reduction, fit_reduction
from ml.neighbours import nearest

MODELS = Path(__file__).resolve().parents[2] / "ml" / "models"


def test_the_reduction_keeps_the_main_axes_and_gives_unit_vectors():
    rng = np.random.default_rng(0)
    # 300 points spread along two directions of a 20-dimensional space, plus a little noise.
    basis = np.linalg.qr(rng.normal(size=(20, 2)))[0].T
    points = rng.normal(size=(300, 2)) * [5.0, 2.0] @ basis + rng.normal(size=(300, 20)) * 0.05

    reduction, explained = fit_reduction(points, dims=2)

    assert explained.sum() > 0.99
    assert np.allclose(reduction.components @ reduction.components.T, np.eye(2), atol=1e-8)
    reduced = reduction.apply(points)
    assert reduced.dtype == np.float32 and reduced.shape == (300, 2)
    assert np.allclose(np.linalg.norm(reduced, axis=1), 1.0, atol=1e-5)
    # Refitting gives the same axes, signs included: the shipped file is reproducible.
    again, _ = fit_reduction(points, dims=2)
    assert np.array_equal(again.components, reduction.components)


def test_a_saved_reduction_loads_back_the_same(tmp_path):
    reduction, _ = fit_reduction(np.random.default_rng(1).normal(size=(50, 8)), dims=3)
    path = tmp_path / EMBEDDING_FILE

    sha256 = reduction.save(path)

    assert sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = Reduction.load(path)
    assert loaded.dims == 3
    assert np.allclose(loaded.components, reduction.components, atol=1e-6)


def test_nearest_finds_the_closest_rows_in_order():
    rng = np.random.default_rng(2)
    matrix = rng.normal(size=(1000, 16)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    query = matrix[17] + 0.01 * rng.normal(size=16).astype(np.float32)
    query /= np.linalg.norm(query)

    rows, distances = nearest(matrix, query, 5)

    expected = np.argsort(1 - matrix @ query)[:5]
    assert rows.tolist() == expected.tolist() and rows[0] == 17
    assert np.all(np.diff(distances) >= 0)
    assert nearest(matrix, query, 5000)[0].shape == (1000,)
    assert nearest(matrix[:0], query, 5)[0].shape == (0,)


def test_the_shipped_reduction_is_the_file_its_card_records():
    current = MODELS / "CURRENT"
    if not current.is_file():
        pytest.skip("no model installed")
    model_dir = MODELS / current.read_text().strip()
    entry = json.loads((model_dir / "card.json").read_text()).get("embedding")
    if entry is None:
        pytest.skip("the served model ships no embedding reduction")
    path = model_dir / entry["file"]

    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    reduction = Reduction.load(path)
    assert reduction.dims == entry["dims"]
    assert entry["fitted_on"]["data"].startswith("HAM10000 training split")
