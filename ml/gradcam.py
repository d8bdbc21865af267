"""Grad-CAM (Selvaraju et al., 2017): where in the image the network found evidence for a class.

The map is computed on the last convolutional stage (timm's `bn2`, the 1280-channel output of
`conv_head` after its batch norm and ReLU6, 6x6 for a 192-pixel input), the last place that
still knows *where* before global pooling throws it away. It is coarse by nature: it says which
part of the lesion drove the score, not which pixels.

The network only ever sees a centre crop of the image (see `ml.preprocessing`), so the map is
laid back onto that crop's box in the original image, at the original size, and is zero
outside it: a doctor should see that the rim of the photograph was not looked at, not a
stretched guess.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ml.preprocessing import PreprocessConfig, load_rgb


def grad_cam(
    model: torch.nn.Module, batch: torch.Tensor, class_index: int, layer: torch.nn.Module
) -> np.ndarray:
    """Grad-CAM of one image (batch of size 1) for one class, at the layer's resolution,
    scaled to [0, 1] (all zeros when nothing in the image speaks for the class)."""
    if batch.shape[0] != 1:
        raise ValueError(f"grad_cam takes a batch of one image, got {batch.shape[0]}")
    captured: dict[str, torch.Tensor] = {}

    def keep_output(_module: torch.nn.Module, _inputs: object, output: torch.Tensor) -> None:
        captured["activations"] = output

    handle = layer.register_forward_hook(keep_output)
    try:
        with torch.enable_grad():
            # The input carries the graph, so this works whether or not the weights require
            # grad, and autograd.grad fills no .grad buffers on the shared model.
            inputs = batch.detach().clone().requires_grad_(True)
            score = model(inputs)[0, class_index]
            activations = captured["activations"]
            (gradients,) = torch.autograd.grad(score, activations)
    finally:
        handle.remove()
    weights = gradients.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * activations).sum(dim=1))[0].detach().float()
    peak = cam.max()
    cam = cam / peak if peak > 0 else torch.zeros_like(cam)
    return cam.numpy()


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


def cam_to_image(
    cam: np.ndarray, image_size: tuple[int, int], config: PreprocessConfig
) -> np.ndarray:
    """The feature-resolution map upsampled onto the crop box, zero elsewhere, (H, W)."""
    width, height = image_size
    left, top, right, bottom = (int(round(v)) for v in crop_box(image_size, config))
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(max(right, left + 1), width), min(max(bottom, top + 1), height)
    full = np.zeros((height, width), dtype=np.float32)
    resized = F.interpolate(
        torch.from_numpy(np.ascontiguousarray(cam, dtype=np.float32))[None, None],
        size=(bottom - top, right - left),
        mode="bilinear",
        align_corners=False,
    )[0, 0]
    full[top:bottom, left:right] = resized.clamp(0, 1).numpy()
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
