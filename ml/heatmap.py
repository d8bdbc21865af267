"""Drawing a class activation map onto the picture, with numpy and Pillow only.

Shared by Grad-CAM on the PyTorch network (ml.gradcam) and the CAM output of an ONNX runtime
(ml.onnx_serving), so both heatmaps are laid onto the image by the same code, and a worker
that serves ONNX never imports torch to draw one.

The network only ever sees a centre crop of the image (see `ml.preprocessing`), so the map is
laid back onto that crop's box in the original image, at the original size, and is zero
outside it: a doctor should see that the rim of the photograph was not looked at, not a
stretched guess.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ml.imaging import load_rgb
from ml.preprocess_config import PreprocessConfig


def normalised_cam(cams: np.ndarray, class_index: int) -> np.ndarray:
    """One image's CAM (classes, h, w) for one class, ReLU'd and scaled to [0, 1] as
    `ml.gradcam.grad_cam` scales its map (all zeros when nothing speaks for the class)."""
    cam = np.maximum(np.asarray(cams[class_index], dtype=np.float32), 0.0)
    peak = float(cam.max())
    return cam / peak if peak > 0 else np.zeros_like(cam)


def crop_box(image_size: tuple[int, int], config: PreprocessConfig) -> tuple[float, ...]:
    """(left, top, right, bottom) in original pixels of the centre crop the network sees,
    following torchvision's Resize(short side) then CenterCrop arithmetic."""
    width, height = image_size
    short = min(width, height)
    resized_w = config.resize_to if width == short else int(config.resize_to * width / height)
    resized_h = config.resize_to if height == short else int(config.resize_to * height / width)
    crop = config.input_size
    left = int(round((resized_w - crop) / 2.0))
    top = int(round((resized_h - crop) / 2.0))
    sx, sy = width / resized_w, height / resized_h
    return (left * sx, top * sy, (left + crop) * sx, (top + crop) * sy)


def _linear_weights(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of a 1-D linear resize with half-pixel centres: the
    arithmetic of torch's `interpolate(mode="bilinear", align_corners=False)` upsampling."""
    scale = np.float32(size_in / size_out)
    source = (np.arange(size_out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    source = np.maximum(source, np.float32(0.0))
    low = np.minimum(source.astype(np.int64), size_in - 1)
    high = np.minimum(low + 1, size_in - 1)
    return low, high, (source - low).astype(np.float32)


def resize_bilinear(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) float map resized to `size` = (height, width), bilinear, half-pixel centres."""
    values = np.asarray(values, dtype=np.float32)
    rows_lo, rows_hi, row_w = _linear_weights(values.shape[0], size[0])
    cols_lo, cols_hi, col_w = _linear_weights(values.shape[1], size[1])
    rows = values[rows_lo] * (1 - row_w)[:, None] + values[rows_hi] * row_w[:, None]
    return rows[:, cols_lo] * (1 - col_w)[None, :] + rows[:, cols_hi] * col_w[None, :]


def cam_to_image(
    cam: np.ndarray, image_size: tuple[int, int], config: PreprocessConfig
) -> np.ndarray:
    """The feature-resolution map upsampled onto the crop box, zero elsewhere, (H, W)."""
    width, height = image_size
    left, top, right, bottom = (int(round(v)) for v in crop_box(image_size, config))
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(max(right, left + 1), width), min(max(bottom, top + 1), height)
    full = np.zeros((height, width), dtype=np.float32)
    resized = resize_bilinear(cam, (bottom - top, right - left))
    full[top:bottom, left:right] = np.clip(resized, 0.0, 1.0)
    return full


def jet(values: np.ndarray) -> np.ndarray:
    """The 'jet' colour map (blue, cyan, yellow, red) in numpy, (..., 3) floats in [0, 1];
    written out so the worker needs no matplotlib."""
    x = np.asarray(values, dtype=np.float32)[..., None]
    # Red, green and blue peak at 3/4, 1/2 and 1/4 of the range.
    centres = np.array([3.0, 2.0, 1.0], dtype=np.float32)
    return np.clip(1.5 - np.abs(4.0 * x - centres), 0.0, 1.0)


def overlay(image: Image.Image, cam: np.ndarray, alpha: float = 0.6) -> Image.Image:
    """Colour the image where the map is high and leave it as it is where the map is zero,
    so the lesion stays readable underneath."""
    rgb = np.asarray(load_rgb(image), dtype=np.float32) / 255.0
    weight = alpha * cam[..., None]
    blended = rgb * (1.0 - weight) + jet(cam) * weight
    return Image.fromarray(np.round(blended * 255.0).astype(np.uint8))
