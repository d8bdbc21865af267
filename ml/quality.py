"""Is this photograph usable at all? Size, focus, exposure and framing, before any prediction.

Each measure is computed on the image scaled to a fixed size (short side 150 px, HAM10000's),
so a sharp 4000-pixel photograph from another dermatoscope and a 200x150 HAM10000 image are
judged on the same scale: the variance of the Laplacian grows with resolution, and a gate
fitted on small images would otherwise call every large one sharp and every small one blurred.

Thresholds are not guesses: `fit_thresholds` sets each at a low quantile of HAM10000 training
images (all of which a dermatologist accepted for the archive), with a margin, so a new
device's good image is not refused for being unlike HAM10000. They are stored with the model
(`gate.json`) and the card says what they accept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

MEASURE_SHORT_SIDE = 150
MIN_SIDE_PX = 64


@dataclass(frozen=True)
class QualityMeasures:
    width: int
    height: int
    sharpness: float  # variance of the Laplacian of the grey image at the fixed scale
    brightness: float  # mean grey level, 0-255
    dark_fraction: float  # share of pixels below 10
    bright_fraction: float  # share of pixels above 245
    contrast: float  # standard deviation of the grey level


@dataclass(frozen=True)
class QualityThresholds:
    min_side: int
    min_sharpness: float
    min_brightness: float
    max_brightness: float
    max_dark_fraction: float
    max_bright_fraction: float
    min_contrast: float

    def as_dict(self) -> dict:
        return asdict(self)


# What each failed check tells the person holding the dermatoscope.
REASONS: dict[str, str] = {
    "too_small": "The image is too small to assess. Upload the full-resolution photograph.",
    "blurred": "The image is out of focus. Retake it with the dermatoscope touching the skin "
    "and the lesion in focus.",
    "too_dark": "The image is too dark. Retake it with the dermatoscope's light on.",
    "too_bright": "The image is overexposed. Retake it with less light or without flash.",
    "uniform": "No lesion is visible (the image is nearly uniform). Centre the lesion and "
    "retake it.",
}


def _grey(image: Image.Image) -> np.ndarray:
    rgb = image.convert("RGB")
    scale = MEASURE_SHORT_SIDE / min(rgb.size)
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    return np.asarray(rgb.resize(size, Image.Resampling.LANCZOS).convert("L"), dtype=np.float64)


def _laplacian_variance(grey: np.ndarray) -> float:
    centre = grey[1:-1, 1:-1]
    lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * centre
    return float(lap.var())


def measure(image: Image.Image) -> QualityMeasures:
    """The quality measures of one image (any mode and size)."""
    grey = _grey(image)
    return QualityMeasures(
        width=image.width,
        height=image.height,
        sharpness=_laplacian_variance(grey),
        brightness=float(grey.mean()),
        dark_fraction=float((grey < 10).mean()),
        bright_fraction=float((grey > 245).mean()),
        contrast=float(grey.std()),
    )


def check(measures: QualityMeasures, thresholds: QualityThresholds) -> str | None:
    """The first failed check's key in REASONS, or None when the image is usable."""
    if min(measures.width, measures.height) < thresholds.min_side:
        return "too_small"
    if measures.brightness < thresholds.min_brightness or (
        measures.dark_fraction > thresholds.max_dark_fraction
    ):
        return "too_dark"
    if measures.brightness > thresholds.max_brightness or (
        measures.bright_fraction > thresholds.max_bright_fraction
    ):
        return "too_bright"
    if measures.contrast < thresholds.min_contrast:
        return "uniform"
    if measures.sharpness < thresholds.min_sharpness:
        return "blurred"
    return None


def fit_thresholds(
    measures: Iterable[QualityMeasures], quantile: float = 0.001, margin: float = 0.5
) -> QualityThresholds:
    """Thresholds that accept all but the `quantile` tail of accepted archive images, then
    widened by `margin` (a fraction of the tail value) towards leniency: refusing a good image
    costs a retake, but refusing every image of a new device makes the portal useless there."""
    rows = list(measures)
    sharp = np.array([m.sharpness for m in rows])
    bright = np.array([m.brightness for m in rows])
    dark = np.array([m.dark_fraction for m in rows])
    over = np.array([m.bright_fraction for m in rows])
    contrast = np.array([m.contrast for m in rows])
    q_lo, q_hi = quantile, 1 - quantile
    return QualityThresholds(
        min_side=MIN_SIDE_PX,
        min_sharpness=float(np.quantile(sharp, q_lo) * (1 - margin)),
        min_brightness=float(np.quantile(bright, q_lo) * (1 - margin)),
        max_brightness=float(min(250.0, np.quantile(bright, q_hi) + margin * 20)),
        max_dark_fraction=float(min(0.95, np.quantile(dark, q_hi) + margin * 0.2)),
        max_bright_fraction=float(min(0.95, np.quantile(over, q_hi) + margin * 0.2)),
        min_contrast=float(np.quantile(contrast, q_lo) * (1 - margin)),
    )
