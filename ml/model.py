"""The classifier network: timm's EfficientNet-Lite0 with a seven-class head."""

from __future__ import annotations

import timm
import torch

from ml.classes import CLASSES
from ml.pretrained import load_imagenet_lite0

ARCHITECTURE = "tf_efficientnet_lite0"


def build_model(
    *, pretrained: bool = True, drop_rate: float = 0.2, drop_path_rate: float = 0.1
) -> torch.nn.Module:
    """EfficientNet-Lite0 for the seven classes, from ImageNet weights when `pretrained`."""
    model = timm.create_model(
        ARCHITECTURE,
        pretrained=False,
        num_classes=len(CLASSES),
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
    )
    if pretrained:
        imagenet = load_imagenet_lite0().state_dict()
        backbone = {k: v for k, v in imagenet.items() if not k.startswith("classifier.")}
        missing, unexpected = model.load_state_dict(backbone, strict=False)
        # Only the new head may be left uninitialised by the ImageNet weights.
        assert set(missing) == {"classifier.weight", "classifier.bias"}, missing
        assert not unexpected, unexpected
    # A zero head starts every class at equal odds, so the first steps tune the head
    # instead of undoing a random one's confident guesses through the pretrained features.
    torch.nn.init.zeros_(model.classifier.weight)
    torch.nn.init.zeros_(model.classifier.bias)
    return model.to(memory_format=torch.channels_last)
