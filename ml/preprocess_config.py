"""What preprocessing a model was trained with (input size, crop, normalisation), torch-free.

Kept apart from ml.preprocessing (torchvision transforms) so a worker that serves an ONNX
runtime can read a card's preprocessing and prepare images with numpy and Pillow alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The ImageNet weights of EfficientNet-Lite were trained on inputs scaled to [-1, 1].
MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
STD: tuple[float, float, float] = (0.5, 0.5, 0.5)
CROP_PCT: float = 0.875


@dataclass(frozen=True)
class PreprocessConfig:
    input_size: int = 192
    crop_pct: float = CROP_PCT
    mean: tuple[float, float, float] = MEAN
    std: tuple[float, float, float] = STD

    @property
    def resize_to(self) -> int:
        """Short side before the centre crop, as timm computes it from crop_pct."""
        return math.floor(self.input_size / self.crop_pct)

    def as_dict(self) -> dict:
        return {
            "input_size": self.input_size,
            "crop_pct": self.crop_pct,
            "resize_short_side": self.resize_to,
            "interpolation": "bicubic",
            "mean": list(self.mean),
            "std": list(self.std),
        }
