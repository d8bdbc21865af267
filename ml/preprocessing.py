"""Image preprocessing shared by training, evaluation and the portal's worker.

There is one path from a decoded image to the network's input tensor (`to_model_input`):
training only adds random geometric and colour changes *before* it, so a model never sees
inputs at serving time that were prepared differently from the ones it learned on.
"""

from __future__ import annotations

import torch
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.functional import InterpolationMode

from ml.imaging import load_rgb
from ml.preprocess_config import CROP_PCT, MEAN, STD, PreprocessConfig

# PreprocessConfig lives in ml.preprocess_config (torch-free); its old home still names it.
__all__ = [
    "CROP_PCT",
    "INTERPOLATION",
    "MEAN",
    "STD",
    "PreprocessConfig",
    "eval_transform",
    "to_model_input",
    "train_transform",
]

INTERPOLATION = InterpolationMode.BICUBIC


def _to_tensor(config: PreprocessConfig) -> v2.Compose:
    return v2.Compose(
        [
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=config.mean, std=config.std),
        ]
    )


def eval_transform(config: PreprocessConfig) -> v2.Compose:
    """Deterministic resize + centre crop + normalise: what the model sees at serving time."""
    return v2.Compose(
        [
            v2.Resize(config.resize_to, interpolation=INTERPOLATION, antialias=True),
            v2.CenterCrop(config.input_size),
            _to_tensor(config),
        ]
    )


def train_transform(
    config: PreprocessConfig,
    *,
    scale_min: float = 0.35,
    hue: float = 0.03,
    saturation: float = 0.2,
    trivial_augment: bool = False,
) -> v2.Compose:
    """Dermoscopy-appropriate augmentation, then the same tensor conversion as serving.

    Dermoscopic images have no canonical orientation, so flips and 90-degree rotations are
    label-preserving; scale/crop and colour jitter stand in for different dermatoscopes,
    zoom levels and lighting, which is what images from other clinics differ in.
    `trivial_augment` adds one TrivialAugment operation per image (strength drawn at random),
    a stronger and tuning-free stand-in for the variety of other clinics' devices.
    """
    steps: list = [
        v2.RandomResizedCrop(
            config.input_size,
            scale=(scale_min, 1.0),
            ratio=(0.75, 1.333),
            interpolation=INTERPOLATION,
            antialias=True,
        ),
        v2.RandomHorizontalFlip(),
        v2.RandomVerticalFlip(),
        v2.RandomChoice([v2.RandomRotation((angle, angle)) for angle in (0, 90, 180, 270)]),
        v2.ColorJitter(brightness=0.25, contrast=0.25, saturation=saturation, hue=hue),
    ]
    if trivial_augment:
        steps.append(v2.TrivialAugmentWide(interpolation=InterpolationMode.BILINEAR))
    return v2.Compose([*steps, _to_tensor(config)])


def to_model_input(image: Image.Image, config: PreprocessConfig) -> torch.Tensor:
    """One image, any mode and size, to the (3, H, W) tensor the network expects."""
    return eval_transform(config)(load_rgb(image))
