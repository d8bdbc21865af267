"""The worker's API: load an exported classifier once, then turn images into predictions.

    classifier = Classifier.load_current()          # ml/models/CURRENT names the version
    prediction = classifier.predict(pil_image)      # calibrated probabilities, risk tier, triage
    prediction = classifier.predict(pil_image, metadata.parse(age=54, sex="female", site="back"))
    overlay = classifier.heatmap(pil_image, "mel")  # Grad-CAM, the image's size (capped)

A model directory (`ml/models/<version>/`, written by `ml.export`) holds `weights.pt` (a state
dict) and `card.json` (architecture, preprocessing, class order, temperature, tier thresholds,
and from v2 on the clinical triage's thresholds, `triage`).
Everything needed to reproduce the validated behaviour is read from the card, so a model is
served exactly as it was measured.

`torch.set_num_threads` is process-wide: the first `Classifier.load` fixes it for the process
(argument, else `$ML_TORCH_THREADS`, else 1). One thread per worker process keeps several
Celery processes on a small machine from fighting over cores.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ml import metadata as meta
from ml.classes import class_index
from ml.gradcam import cam_to_image, grad_cam, overlay
from ml.imaging import WORKING_MAX_PIXELS, working_copy
from ml.onnx_serving import measured_file, onnx_runner, servable_form
from ml.preprocessing import to_model_input
from ml.runtimes import RUNTIMES, OnnxRunner, file_sha256, normalised_cam

# What a served model shares with the torch-free runtimes lives in ml.served; these names have
# always been imported from here, so here they stay.
from ml.served import (
    BATCH_SIZE,
    CARD_FILE,
    CURRENT_FILE,
    DEFAULT_THREADS,
    DIHEDRAL_VIEWS,
    MODELS_ROOT,
    THREADS_ENV,
    TTA_VIEWS,
    WEIGHTS_FILE,
    CardModel,
    ClassifierNotInstalled,
    Prediction,
    current_model_dir,
    preprocess_config,
    read_card,
    resolve_threads,
)
from ml.torch_runtimes import TorchRunner

__all__ = [
    "BATCH_SIZE",
    "CARD_FILE",
    "CURRENT_FILE",
    "DEFAULT_THREADS",
    "DIHEDRAL_VIEWS",
    "MAX_FORWARD_BATCH",
    "MODELS_ROOT",
    "THREADS_ENV",
    "TTA_VIEWS",
    "WEIGHTS_FILE",
    "Classifier",
    "ClassifierNotInstalled",
    "Prediction",
    "build_network",
    "forward_logits",
    "preprocess_config",
    "read_card",
    "tta_views",
]

MAX_FORWARD_BATCH = 32


def tta_views(batch: torch.Tensor, views: int = len(TTA_VIEWS)) -> list[torch.Tensor]:
    """The image, mirrored left-right, top-bottom, and both (a 180-degree turn); with
    `views=8` also the four transposed versions (the whole dihedral group of the square).

    A dermoscopic image has no 'up', so these are the same lesion; averaging the logits over
    them removes some of the network's orientation noise. Used only when the export measured
    a gain on validation (card `tta`)."""
    plain = [
        batch,
        torch.flip(batch, dims=(3,)),
        torch.flip(batch, dims=(2,)),
        torch.flip(batch, dims=(2, 3)),
    ]
    if views == len(TTA_VIEWS):
        return plain
    if views != len(DIHEDRAL_VIEWS):
        raise ValueError(f"TTA takes 4 or 8 views, not {views}")
    return plain + [view.transpose(2, 3) for view in plain]


def _call(model: torch.nn.Module, images: torch.Tensor, metadata: torch.Tensor | None):
    """v1 networks take images only; v2 (`LesionNet`) also the metadata vectors."""
    if metadata is None:
        return model(images)
    return model(images, metadata)


def logits_per_view(
    model: torch.nn.Module,
    batch: torch.Tensor,
    metadata: torch.Tensor | None = None,
    views: int = len(TTA_VIEWS),
) -> torch.Tensor:
    """Logits of every TTA view, (views, n, classes); the views go through as one batch,
    since on a CPU four images cost far less than four calls of one."""
    images = tta_views(batch, views)
    stacked = torch.cat(images).contiguous(memory_format=torch.channels_last)
    repeated = None if metadata is None else metadata.repeat(len(images), 1)
    return _call(model, stacked, repeated).float().view(len(images), batch.shape[0], -1)


def forward_logits(
    model: torch.nn.Module,
    batch: torch.Tensor,
    tta: bool | int = False,
    metadata: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits for a preprocessed batch, averaged over `tta_views` when `tta` (True: the four
    flips; an int: that many views), the one forward path of serving, matching what the
    export fitted temperature and thresholds on. With TTA the images go through a few at a
    time, so no forward pass exceeds MAX_FORWARD_BATCH images (a 128-image pass needs over a
    gigabyte of activations)."""
    if not tta:
        return _call(model, batch.contiguous(memory_format=torch.channels_last), metadata).float()
    views = len(TTA_VIEWS) if tta is True else int(tta)
    step = max(1, MAX_FORWARD_BATCH // views)
    parts = []
    for start in range(0, batch.shape[0], step):
        part_meta = None if metadata is None else metadata[start : start + step]
        parts.append(logits_per_view(model, batch[start : start + step], part_meta, views).mean(0))
    return torch.cat(parts)


def build_network(card: dict) -> torch.nn.Module:
    """The card's network, untrained: v1 cards name a timm architecture; v2 cards
    (`"network": "lesionnet"`) a LesionNet with or without its metadata branch, or
    (`"network": "ensemble"`) the mean of several LesionNets' logits."""
    if card.get("network") == "lesionnet":
        from ml.model import LesionNet

        return LesionNet(card["architecture"], use_metadata=bool(card["metadata"]["used"]))
    if card.get("network") == "ensemble":
        from ml.model import LesionEnsemble, LesionNet

        return LesionEnsemble(
            [
                LesionNet(m["architecture"], use_metadata=bool(m["metadata"]))
                for m in card["members"]
            ]
        )
    import timm

    return timm.create_model(
        card["architecture"], pretrained=False, num_classes=len(card["classes"])
    )


def _runner(
    model_dir: Path, card: dict, runtime: str, threads: int, model: torch.nn.Module
) -> OnnxRunner | TorchRunner:
    """The card's accelerated form of the network, refused unless export measured it as
    servable and (for a shipped file) the file is the one measured."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; the runtimes are {', '.join(RUNTIMES)}")
    if runtime in ("onnx-fp32", "onnx-int8"):
        return onnx_runner(model_dir, card, runtime, threads)
    entry = servable_form(model_dir, card, runtime)
    if runtime == "torch-compile":
        return TorchRunner.compiled(model)
    return TorchRunner.int8(measured_file(model_dir, entry))


class Classifier(CardModel):
    """An exported model, loaded once, in eval mode; predictions are calibrated."""

    def __init__(
        self,
        model: torch.nn.Module,
        card: dict,
        model_dir: Path,
        threads: int = DEFAULT_THREADS,
        runner: OnnxRunner | TorchRunner | None = None,
    ) -> None:
        super().__init__(card, model_dir, threads)
        self.model = model.eval().to(memory_format=torch.channels_last)
        # An accelerated form (card `runtime`: torch-compile, torch-int8, onnx-fp32, onnx-int8)
        # runs the network, and for ONNX the heatmap too; the PyTorch network stays the
        # reference it was checked against and draws Grad-CAM for the torch forms.
        self.runner = runner
        self.runtime = "torch" if runner is None else card["runtime"]
        # Grad-CAM hooks the shared network; one request at a time on it.
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        *,
        threads: int | None = None,
        warm_up: bool = True,
        runtime: str | None = None,
    ) -> Classifier:
        """Load `model_dir` (= ml/models/<version>). Raises ClassifierNotInstalled when its
        card or weights are missing, ValueError when the weights are not the ones the card
        was written for, or when `runtime` failed its parity check or its file is not the one
        measured. `runtime` overrides the card's (`torch`, `torch-compile`, `torch-int8`,
        `onnx-fp32`, `onnx-int8`; default the card's `runtime`, else torch)."""
        model_dir = Path(model_dir)
        card = read_card(model_dir)
        threads = resolve_threads(threads)
        torch.set_num_threads(threads)
        weights_path = model_dir / WEIGHTS_FILE
        expected = card.get("weights_sha256")
        if expected:
            actual = file_sha256(weights_path)
            if actual != expected:
                raise ValueError(
                    f"{weights_path} has sha256 {actual}, the card expects {expected}: "
                    "weights and card come from different exports"
                )
        model = build_network(card)
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        runtime = runtime or card.get("runtime", "torch")
        runner = None
        if runtime != "torch":
            runner = _runner(model_dir, card, runtime, threads, model)
            card = {**card, "runtime": runtime}
        classifier = cls(model, card, model_dir, threads, runner)
        if warm_up:
            # The first forward pass builds the CPU kernels' plans; pay for it at start-up,
            # not in the first patient's analysis.
            size = classifier.config.input_size
            classifier.predict_tensors(torch.zeros(1, 3, size, size))
            if isinstance(runner, TorchRunner):
                # torch.compile specialises on the first batch size and recompiles with a
                # dynamic batch on the second: both at start-up, not in a patient's batch.
                classifier.predict_tensors(torch.zeros(2, 3, size, size))
        return classifier

    @classmethod
    def load_current(
        cls,
        models_root: str | Path | None = None,
        *,
        threads: int | None = None,
        warm_up: bool = True,
    ) -> Classifier:
        """Load the version named in `models_root/CURRENT` (default ml/models)."""
        return cls.load(current_model_dir(models_root), threads=threads, warm_up=warm_up)

    def forward(self, batch: torch.Tensor, metadata: torch.Tensor | None = None) -> np.ndarray:
        """Uncalibrated logits (n, 7) of a preprocessed batch through the served runtime."""
        if metadata is None and self.uses_metadata:
            metadata = self.metadata_tensor(None, batch.shape[0])
        if self.runner is not None:
            # An image-only graph has no metadata input; the runner feeds only what it has.
            vectors = metadata if metadata is not None else torch.zeros(len(batch), meta.N_FEATURES)
            return self.runner.logits(batch.numpy(), vectors.numpy(), self.tta or 1)
        with self._lock, torch.inference_mode():
            return forward_logits(self.model, batch, self.tta, metadata).numpy()

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """(3, H, W) network input of one image, by the same function training used."""
        if not isinstance(image, Image.Image):
            raise TypeError(f"expected a PIL.Image.Image, got {type(image).__name__}")
        return to_model_input(image, self.config)

    def metadata_tensor(
        self, metadata: Sequence[meta.LesionMetadata | None] | None, n: int
    ) -> torch.Tensor | None:
        """(n, features) vectors for a v2 model with a metadata branch; None for the others."""
        if not self.uses_metadata:
            return None
        records = list(metadata) if metadata is not None else [None] * n
        if len(records) != n:
            raise ValueError(f"{len(records)} metadata records for {n} images")
        return torch.stack([meta.encode(record) for record in records])

    def predict_tensors(
        self, batch: torch.Tensor, metadata: torch.Tensor | None = None
    ) -> np.ndarray:
        """Calibrated probabilities (n, 7) of an already preprocessed batch."""
        return self.calibrated(self.forward(batch, metadata))

    def _probabilities(
        self, inputs: list[torch.Tensor], records: list[meta.LesionMetadata | None]
    ) -> np.ndarray:
        return self.predict_tensors(torch.stack(inputs), self.metadata_tensor(records, len(inputs)))

    def heatmap(
        self, image: Image.Image, target: str, *, max_pixels: int = WORKING_MAX_PIXELS
    ) -> Image.Image:
        """Grad-CAM overlay for class code `target` ("mel", or the top class), RGB, at the
        input image's own size, or scaled down to at most `max_pixels` pixels (aspect kept).

        Grad-CAM runs at the model's resolution (the network's input, a 6x6 map) and is
        scaled up onto the picture; the overlay is drawn on a working copy, never on a
        7000 x 7000 original (seconds of worker time and gigabytes of float arrays for a map
        that holds 36 numbers). Computed on the plain view even when TTA is on: a map
        averaged over mirrored views would blur what it is meant to localise."""
        index = class_index(target)
        picture = working_copy(image, max_pixels)
        rgb = self.preprocess(picture)
        if isinstance(self.runner, OnnxRunner):
            vectors = torch.zeros(1, meta.N_FEATURES)  # CAMs read the image body only
            _, cams = self.runner.run(rgb[None].numpy(), vectors.numpy())
            full = cam_to_image(normalised_cam(cams[0], index), picture.size, self.config)
            return overlay(picture, full)
        with self._lock:
            cam = grad_cam(self.model, rgb[None], index, self.model.bn2)
        full = cam_to_image(cam, picture.size, self.config)
        return overlay(picture, full)
