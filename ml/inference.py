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

import hashlib
import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ml import metadata as meta
from ml.calibration import RiskThresholds
from ml.classes import CLASSES, MELANOMA_INDEX, class_index
from ml.gradcam import cam_to_image, grad_cam, overlay
from ml.imaging import WORKING_MAX_PIXELS, working_copy
from ml.preprocessing import PreprocessConfig, to_model_input
from ml.runtimes import OnnxRunner, file_sha256, normalised_cam
from ml.selection import calibrate
from ml.triage import Triage, TriageThresholds, triage

MODELS_ROOT = Path(__file__).resolve().parent / "models"
CURRENT_FILE = "CURRENT"
CARD_FILE = "card.json"
WEIGHTS_FILE = "weights.pt"
THREADS_ENV = "ML_TORCH_THREADS"
DEFAULT_THREADS = 1
BATCH_SIZE = 32
MAX_FORWARD_BATCH = 32
# The order of tta_views; the card lists the names of the views a model is served with.
TTA_VIEWS: tuple[str, ...] = ("identity", "hflip", "vflip", "rot180")
# The eight symmetries of the square (v2 cards): the four above, then their transposes.
DIHEDRAL_VIEWS: tuple[str, ...] = (
    *TTA_VIEWS,
    "transpose",
    "rot90",
    "rot270",
    "antitranspose",
)


@dataclass(frozen=True)
class Prediction:
    probabilities: dict[str, float]  # calibrated, the 7 class codes of ml.classes.CLASSES, sum 1
    top_class: str
    melanoma_probability: float
    risk_tier: str  # "low" | "moderate" | "high"
    model_version: str
    timings_ms: dict[str, float]  # {"preprocess": .., "inference": ..}
    # Which of age/sex/site the model read ((): image only, by choice or because none known).
    metadata_used: tuple[str, ...] = ()
    # The clinical triage (ml.triage) when the card has triage thresholds (v2); None for a
    # model without them (v1), whose results carry the melanoma risk tier alone.
    triage: Triage | None = None


class ClassifierNotInstalled(Exception):
    """No exported model where the portal looked: the portal shows 'analysis unavailable'
    instead of failing, and the message names the path so an operator knows what to fix."""


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


def _resolve_threads(threads: int | None) -> int:
    if threads is None:
        threads = int(os.environ.get(THREADS_ENV, DEFAULT_THREADS))
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return threads


def read_card(model_dir: Path) -> dict:
    """The model card of a model directory; ClassifierNotInstalled if it or the weights
    are missing."""
    card_path, weights_path = model_dir / CARD_FILE, model_dir / WEIGHTS_FILE
    for path in (card_path, weights_path):
        if not path.is_file():
            raise ClassifierNotInstalled(f"no classifier installed: {path} not found")
    with open(card_path) as handle:
        return json.load(handle)


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


def _onnx_runner(model_dir: Path, card: dict, runtime: str, threads: int) -> OnnxRunner:
    """The card's ONNX form of the network, refused unless export measured it as servable and
    the file is the one measured."""
    entry = card.get("runtimes", {}).get(runtime)
    if entry is None:
        raise ValueError(f"{model_dir} has no {runtime} form; run python -m ml.runtimes")
    if not entry.get("servable"):
        raise ValueError(f"{runtime} of {model_dir} failed its parity check: {entry['parity']}")
    path = model_dir / entry["file"]
    if not path.is_file() or file_sha256(path) != entry["sha256"]:
        raise ValueError(f"{path} is missing or is not the file the card measured")
    return OnnxRunner(path, threads)


def preprocess_config(card: dict) -> PreprocessConfig:
    """The card's preprocessing as a PreprocessConfig, refusing a card whose recorded
    preprocessing this code would not reproduce exactly."""
    recorded = card["preprocessing"]
    config = PreprocessConfig(
        input_size=int(recorded["input_size"]),
        crop_pct=float(recorded["crop_pct"]),
        mean=tuple(recorded["mean"]),
        std=tuple(recorded["std"]),
    )
    if config.as_dict() != recorded:
        raise ValueError(
            f"model card preprocessing {recorded} differs from what this code does "
            f"{config.as_dict()}; re-export the model with this version of ml/"
        )
    return config


class Classifier:
    """An exported model, loaded once, in eval mode; predictions are calibrated."""

    def __init__(
        self,
        model: torch.nn.Module,
        card: dict,
        model_dir: Path,
        threads: int = DEFAULT_THREADS,
        runner: OnnxRunner | None = None,
    ) -> None:
        if tuple(card["classes"]) != CLASSES:
            raise ValueError(f"model classes {card['classes']} differ from ml.classes {CLASSES}")
        self.model = model.eval().to(memory_format=torch.channels_last)
        # An ONNX Runtime session (card `runtime` onnx-fp32 / onnx-int8) runs the network and
        # the heatmap; the PyTorch network stays the reference it was checked against.
        self.runner = runner
        self.runtime = "torch" if runner is None else card["runtime"]
        self.card = card
        self.version: str = card["version"]
        self.model_dir = model_dir
        self.threads = threads
        self.config = preprocess_config(card)
        self.temperature = float(card["temperature"])
        # v2: bias-corrected temperature scaling (ml.selection); v1: temperature only.
        bias = card.get("calibration_bias")
        self.calibration_bias = np.asarray(bias, dtype=np.float64) if bias else None
        self.thresholds = RiskThresholds(
            moderate=float(card["thresholds"]["moderate"]), high=float(card["thresholds"]["high"])
        )
        # v2 cards: the triage of every skin cancer (ml.triage); v1 cards have none.
        triage_card = card.get("triage") or {}
        self.triage_thresholds = (
            TriageThresholds(**{k: float(v) for k, v in triage_card["thresholds"].items()})
            if triage_card.get("thresholds")
            else None
        )
        tta = card.get("tta", False)
        # v1 cards store a bool (four flips); v2 cards the number of views.
        self.tta: int = len(TTA_VIEWS) if tta is True else int(tta or 0)
        self.uses_metadata = bool(card.get("metadata", {}).get("used", False))
        # v2: probabilities are calibrated; the shown top class is the balanced decision
        # argmax(p / prior), which every class's recall counts in (card `decision`).
        weights = card.get("decision", {}).get("class_weights")
        self.decision_weights = np.asarray(weights, dtype=np.float64) if weights else None
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
        was written for. `runtime` overrides the card's (`torch`, `onnx-fp32`, `onnx-int8`;
        default the card's `runtime`, else torch)."""
        model_dir = Path(model_dir)
        card = read_card(model_dir)
        threads = _resolve_threads(threads)
        torch.set_num_threads(threads)
        weights_path = model_dir / WEIGHTS_FILE
        expected = card.get("weights_sha256")
        if expected:
            actual = hashlib.sha256(weights_path.read_bytes()).hexdigest()
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
            runner = _onnx_runner(model_dir, card, runtime, threads)
            card = {**card, "runtime": runtime}
        classifier = cls(model, card, model_dir, threads, runner)
        if warm_up:
            # The first forward pass builds the CPU kernels' plans; pay for it at start-up,
            # not in the first patient's analysis.
            size = classifier.config.input_size
            classifier.predict_tensors(torch.zeros(1, 3, size, size))
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
        root = Path(models_root) if models_root is not None else MODELS_ROOT
        current = root / CURRENT_FILE
        if not current.is_file():
            raise ClassifierNotInstalled(f"no classifier installed: {current} not found")
        version = current.read_text().strip()
        if not version:
            raise ClassifierNotInstalled(f"no classifier installed: {current} is empty")
        return cls.load(root / version, threads=threads, warm_up=warm_up)

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

    def decide_all(self, probs: np.ndarray) -> np.ndarray:
        """`decide` for every row of (n, 7) probabilities."""
        weighted = probs if self.decision_weights is None else probs * self.decision_weights
        return weighted.argmax(1)

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
        return calibrate(self.forward(batch, metadata), self.temperature, self.calibration_bias)

    def decide(self, probs: np.ndarray) -> int:
        """Index of the class shown as the result: argmax of the probabilities, or for a
        card with balanced decision weights argmax(p * weight)."""
        if self.decision_weights is None:
            return int(probs.argmax())
        return int((probs * self.decision_weights).argmax())

    def _prediction(
        self,
        probs: np.ndarray,
        timings_ms: dict[str, float],
        record: meta.LesionMetadata | None = None,
    ) -> Prediction:
        # float64 softmax, so the rounded-to-Python floats still sum to 1 within 1e-12.
        p_mel = float(probs[MELANOMA_INDEX])
        used = record.present if (record is not None and self.uses_metadata) else ()
        probabilities = {code: float(p) for code, p in zip(CLASSES, probs, strict=True)}
        return Prediction(
            probabilities=probabilities,
            top_class=CLASSES[self.decide(probs)],
            melanoma_probability=p_mel,
            risk_tier=self.thresholds.tier(p_mel),
            model_version=self.version,
            timings_ms=timings_ms,
            metadata_used=used,
            triage=(
                None
                if self.triage_thresholds is None
                else triage(probabilities, self.triage_thresholds)
            ),
        )

    def predict(
        self, image: Image.Image, metadata: meta.LesionMetadata | None = None
    ) -> Prediction:
        """One image of any size and mode to a calibrated prediction with its risk tier and,
        for a card with triage thresholds, its triage; `metadata` (age, sex, site, any of them
        unknown) is read by models that use it."""
        return self.predict_batch([image], metadata=[metadata])[0]

    def predict_batch(
        self,
        images: Sequence[Image.Image],
        batch_size: int = BATCH_SIZE,
        metadata: Sequence[meta.LesionMetadata | None] | None = None,
    ) -> list[Prediction]:
        """Predictions in input order. Each one's `preprocess` time is its own; `inference`
        is its share of its batch's forward pass."""
        if metadata is not None and len(metadata) != len(images):
            raise ValueError(f"{len(metadata)} metadata records for {len(images)} images")
        records = list(metadata) if metadata is not None else [None] * len(images)
        predictions: list[Prediction] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            chunk_records = records[start : start + batch_size]
            tensors, preprocess_ms = [], []
            for image in chunk:
                began = time.perf_counter()
                tensors.append(self.preprocess(image))
                preprocess_ms.append((time.perf_counter() - began) * 1000.0)
            began = time.perf_counter()
            vectors = self.metadata_tensor(chunk_records, len(chunk))
            probs = self.predict_tensors(torch.stack(tensors), vectors)
            inference_ms = (time.perf_counter() - began) * 1000.0 / len(chunk)
            for row, prep, record in zip(probs, preprocess_ms, chunk_records, strict=True):
                timings = {"preprocess": prep, "inference": inference_ms}
                predictions.append(self._prediction(row, timings, record))
        return predictions

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
        if self.runner is not None:
            vectors = torch.zeros(1, meta.N_FEATURES)  # CAMs read the image body only
            _, cams = self.runner.run(rgb[None].numpy(), vectors.numpy())
            full = cam_to_image(normalised_cam(cams[0], index), picture.size, self.config)
            return overlay(picture, full)
        with self._lock:
            cam = grad_cam(self.model, rgb[None], index, self.model.bn2)
        full = cam_to_image(cam, picture.size, self.config)
        return overlay(picture, full)
