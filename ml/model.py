"""The classifier networks.

- v1 (`build_model`): timm's EfficientNet-Lite0 with a seven-class head, image only.
- v2 (`LesionNet`): the same kind of image body, plus an optional small MLP over the
  clinic's record of the lesion (age, sex, site; `ml.metadata`) whose output is concatenated
  with the pooled image features before the one linear head. Called with images alone it
  treats every metadata field as missing, so Grad-CAM and image-only callers work unchanged.
"""

from __future__ import annotations

import timm
import torch
from torch import nn

from ml import metadata as meta
from ml.classes import CLASSES
from ml.pretrained import load_imagenet

ARCHITECTURE = "tf_efficientnet_lite0"
META_WIDTH = 32


def _imagenet_backbone(model: nn.Module, architecture: str = ARCHITECTURE) -> None:
    imagenet = load_imagenet(architecture).state_dict()
    backbone = {k: v for k, v in imagenet.items() if not k.startswith("classifier.")}
    missing, unexpected = model.load_state_dict(backbone, strict=False)
    # Only the new head may be left uninitialised by the ImageNet weights.
    assert set(missing) <= {"classifier.weight", "classifier.bias"}, missing
    assert not unexpected, unexpected


def build_model(
    *, pretrained: bool = True, drop_rate: float = 0.2, drop_path_rate: float = 0.1
) -> torch.nn.Module:
    """EfficientNet-Lite0 for the seven classes (v1), from ImageNet weights when `pretrained`."""
    model = timm.create_model(
        ARCHITECTURE,
        pretrained=False,
        num_classes=len(CLASSES),
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
    )
    if pretrained:
        _imagenet_backbone(model)
    # A zero head starts every class at equal odds, so the first steps tune the head
    # instead of undoing a random one's confident guesses through the pretrained features.
    torch.nn.init.zeros_(model.classifier.weight)
    torch.nn.init.zeros_(model.classifier.bias)
    return model.to(memory_format=torch.channels_last)


class LesionNet(nn.Module):
    """Image body + optional metadata branch + one linear head over both."""

    def __init__(
        self,
        architecture: str = ARCHITECTURE,
        *,
        use_metadata: bool = True,
        drop_rate: float = 0.2,
        drop_path_rate: float = 0.1,
    ) -> None:
        super().__init__()
        self.architecture = architecture
        self.use_metadata = use_metadata
        self.backbone = timm.create_model(
            architecture, pretrained=False, num_classes=0, drop_path_rate=drop_path_rate
        )
        width = self.backbone.num_features
        if use_metadata:
            self.meta = nn.Sequential(
                nn.Linear(meta.N_FEATURES, META_WIDTH),
                nn.ReLU(),
                nn.Linear(META_WIDTH, META_WIDTH),
                nn.ReLU(),
            )
            width += META_WIDTH
        self.register_buffer("missing", meta.encode(None), persistent=False)
        self.dropout = nn.Dropout(drop_rate)
        self.classifier = nn.Linear(width, len(CLASSES))

    @property
    def bn2(self) -> nn.Module:
        """The last convolutional stage, where Grad-CAM looks (as on timm's model)."""
        return self.backbone.bn2

    def features(self, images: torch.Tensor, metadata: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled image features, with the metadata branch's output appended when used."""
        pooled = self.backbone(images)
        if not self.use_metadata:
            return pooled
        if metadata is None:
            metadata = self.missing.expand(images.shape[0], -1)
        return torch.cat([pooled, self.meta(metadata.to(pooled.dtype))], dim=1)

    def forward(self, images: torch.Tensor, metadata: torch.Tensor | None = None) -> torch.Tensor:
        return self.classifier(self.dropout(self.features(images, metadata)))

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters that start from scratch (not ImageNet): they take the full learning rate."""
        params = list(self.classifier.parameters())
        if self.use_metadata:
            params += list(self.meta.parameters())
        return params


def build_lesion_net(
    *,
    use_metadata: bool,
    architecture: str = ARCHITECTURE,
    pretrained: bool = True,
    drop_rate: float = 0.2,
    drop_path_rate: float = 0.1,
) -> LesionNet:
    """A v2 network, from ImageNet weights when `pretrained`, with a zero head."""
    model = LesionNet(
        architecture,
        use_metadata=use_metadata,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
    )
    if pretrained:
        _imagenet_backbone(model.backbone, architecture)
    torch.nn.init.zeros_(model.classifier.weight)
    torch.nn.init.zeros_(model.classifier.bias)
    return model.to(memory_format=torch.channels_last)


class LesionEnsemble(nn.Module):
    """Several LesionNets read the same image (and record); the ensemble's logits are the mean
    of theirs, so calibration, the decision rule and triage treat it as one network.

    Grad-CAM looks at the first member's last stage: the gradient of the mean logit reaching it
    is that member's own, halved, and the map is normalised, so the heatmap is the first
    member's. A map averaged over members' different feature grids would not localise better.
    """

    def __init__(self, members: list[LesionNet]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.use_metadata = any(m.use_metadata for m in members)

    @property
    def bn2(self) -> nn.Module:
        return self.members[0].bn2

    def forward(self, images: torch.Tensor, metadata: torch.Tensor | None = None) -> torch.Tensor:
        logits = [m(images, metadata if m.use_metadata else None) for m in self.members]
        return torch.stack(logits).mean(0)
