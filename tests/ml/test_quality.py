"""The image gate's quality checks: each failure is caught and named, good images pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageFilter

from ml import quality

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
# Lenient fixed thresholds for these tests; the shipped ones are fitted on HAM10000.
THRESHOLDS = quality.QualityThresholds(
    min_side=64,
    min_sharpness=20.0,
    min_brightness=30.0,
    max_brightness=235.0,
    max_dark_fraction=0.6,
    max_bright_fraction=0.5,
    min_contrast=6.0,
)


def _sample(name: str = "mel_ISIC_0024481.jpg") -> Image.Image:
    with Image.open(SAMPLES / name) as image:
        return image.convert("RGB")


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.jpg")), ids=lambda p: p.stem)
def test_shipped_dermoscopic_samples_pass(path):
    with Image.open(path) as image:
        assert quality.check(quality.measure(image), THRESHOLDS) is None


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda im: im.resize((48, 36)), "too_small"),
        (lambda im: Image.new("RGB", im.size, (5, 5, 5)), "too_dark"),
        (lambda im: Image.new("RGB", im.size, (252, 252, 252)), "too_bright"),
        (lambda im: Image.new("RGB", im.size, (214, 170, 150)), "uniform"),
        (lambda im: im.filter(ImageFilter.GaussianBlur(6)), "blurred"),
    ],
    ids=["small", "dark", "bright", "uniform", "blurred"],
)
def test_each_failure_is_named_with_advice(make, reason):
    measures = quality.measure(make(_sample()))

    assert quality.check(measures, THRESHOLDS) == reason
    assert quality.REASONS[reason].endswith(".")


def test_sharpness_is_measured_at_one_scale_whatever_the_file_size():
    """The same scene from a 4x larger sensor scores like the small one, not 16x sharper."""
    large = _sample().resize((800, 600), Image.Resampling.BICUBIC).filter(ImageFilter.SHARPEN)
    small = large.resize((200, 150), Image.Resampling.LANCZOS)

    assert quality.measure(large).sharpness == pytest.approx(
        quality.measure(small).sharpness, rel=0.25
    )


def test_fitted_thresholds_accept_the_images_they_were_fitted_on():
    images = [_sample(p.name) for p in sorted(SAMPLES.glob("*.jpg"))]
    measures = [quality.measure(i) for i in images]

    thresholds = quality.fit_thresholds(measures, quantile=0.0)

    assert all(quality.check(m, thresholds) is None for m in measures)
    assert thresholds.min_sharpness < min(m.sharpness for m in measures)
