"""Grad-CAM (Selvaraju et al., 2017): where in the image the network found evidence for a class.

The map is computed on the last convolutional stage (timm's `bn2`, the 1280-channel output of
`conv_head` after its batch norm and ReLU6, 6x6 for a 192-pixel input), the last place that
still knows *where* before global pooling throws it away. It is coarse by nature: it says which
part of the lesion drove the score, not which pixels.

Laying the map onto the picture (`cam_to_image`, `overlay`) is ml.heatmap's, torch-free, so
the CAM of an ONNX runtime is drawn by the same code; the names stay importable from here.
"""

from __future__ import annotations

import numpy as np
import torch

from ml.heatmap import cam_to_image, crop_box, jet, overlay

__all__ = ["cam_to_image", "crop_box", "grad_cam", "jet", "overlay"]


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
