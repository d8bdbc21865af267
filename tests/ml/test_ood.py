"""The gate's out-of-distribution score: near the training classes low, far from them high."""

from __future__ import annotations

import numpy as np

from ml.ood import MahalanobisModel, fit


def _clusters(rng: np.random.Generator, n: int = 600, dims: int = 32):
    centres = rng.normal(0, 4, size=(3, dims))
    labels = rng.integers(0, 3, n)
    return centres[labels] + rng.normal(0, 1, size=(n, dims)), labels, centres


def test_points_of_the_training_classes_score_below_points_far_from_them():
    rng = np.random.default_rng(0)
    features, labels, centres = _clusters(rng)
    model = fit(features, labels)

    inside = model.score(centres[[0, 1, 2]] + rng.normal(0, 1, size=(3, 32)))
    outside = model.score(rng.normal(0, 1, size=(3, 32)) + 25)

    assert inside.max() < outside.min()
    assert np.quantile(model.score(features), 0.99) < outside.min()


def test_the_fitted_statistics_survive_a_save_and_load(tmp_path):
    rng = np.random.default_rng(1)
    features, labels, _ = _clusters(rng)
    model = fit(features, labels)

    model.save(tmp_path)
    loaded = MahalanobisModel.load(tmp_path)

    probe = rng.normal(0, 3, size=(5, 32))
    np.testing.assert_allclose(loaded.score(probe), model.score(probe), rtol=1e-4)


def test_the_score_is_the_smallest_squared_mahalanobis_distance_written_out():
    """The matrix-product form gives, to float64 rounding, (x - mean) P (x - mean) of the
    nearest class, computed here one image and one class at a time."""
    rng = np.random.default_rng(2)
    features, labels, _ = _clusters(rng)
    model = fit(features, labels)
    probe = rng.normal(0, 3, size=(7, 32))

    expected = [
        min(float((x - mean) @ model.precision @ (x - mean)) for mean in model.means) for x in probe
    ]

    np.testing.assert_allclose(model.score(probe), expected, rtol=1e-10)
