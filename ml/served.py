"""What every served runtime shares, without torch: the model card, calibration, the decision
rule, the risk tier and the triage, and the Prediction they make.

`ml.inference.Classifier` (the PyTorch network, and the reference every runtime is checked
against) and `ml.onnx_serving.OnnxClassifier` (ONNX Runtime, numpy and Pillow only) are both a
`CardModel`: they differ only in how an image becomes logits and a class activation map. A
worker that serves an ONNX runtime imports this module and never torch, whose import alone
costs about 780 MB of resident memory.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml import metadata as meta
from ml.calibration import RiskThresholds
from ml.classes import CLASSES, MELANOMA_INDEX
from ml.preprocess_config import PreprocessConfig
from ml.selection import calibrate
from ml.triage import Triage, TriageThresholds, triage

MODELS_ROOT = Path(__file__).resolve().parent / "models"
CURRENT_FILE = "CURRENT"
CARD_FILE = "card.json"
WEIGHTS_FILE = "weights.pt"
THREADS_ENV = "ML_TORCH_THREADS"
DEFAULT_THREADS = 1
BATCH_SIZE = 32
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


@dataclass(frozen=True)
class Explained:
    """A prediction with what the same forward pass saw of the image, where the runtime's
    network gives it: the class activation maps (classes, h, w) of the plain view, for the
    heatmaps, and the pooled image features, for the embedding. None where they are not had
    for free (the PyTorch network draws Grad-CAM and pools features by passes of their own)."""

    prediction: Prediction
    cams: np.ndarray | None = None
    features: np.ndarray | None = None


class ClassifierNotInstalled(Exception):
    """No exported model where the portal looked: the portal shows 'analysis unavailable'
    instead of failing, and the message names the path so an operator knows what to fix."""


def resolve_threads(threads: int | None) -> int:
    """`threads`, else $ML_TORCH_THREADS, else 1; refuses fewer than one."""
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


def current_model_dir(models_root: str | Path | None = None) -> Path:
    """The directory of the version `models_root/CURRENT` names (default ml/models)."""
    root = Path(models_root) if models_root is not None else MODELS_ROOT
    current = root / CURRENT_FILE
    if not current.is_file():
        raise ClassifierNotInstalled(f"no classifier installed: {current} not found")
    version = current.read_text().strip()
    if not version:
        raise ClassifierNotInstalled(f"no classifier installed: {current} is empty")
    return root / version


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


class CardModel:
    """A model card read for serving: calibration, decision rule, tiers and triage. Subclasses
    turn images into network inputs (`preprocess`) and a chunk of them into calibrated
    probabilities (`_probabilities`); everything after the logits is here, once."""

    runtime: str = "torch"

    def __init__(self, card: dict, model_dir: Path, threads: int = DEFAULT_THREADS) -> None:
        if tuple(card["classes"]) != CLASSES:
            raise ValueError(f"model classes {card['classes']} differ from ml.classes {CLASSES}")
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

    # --- what a runtime provides ---------------------------------------------------------

    def preprocess(self, image: Image.Image):
        """(3, H, W) network input of one image."""
        raise NotImplementedError

    def _probabilities(self, inputs: list, records: list[meta.LesionMetadata | None]):
        """Calibrated probabilities (n, 7) of preprocessed inputs and their records."""
        raise NotImplementedError

    # --- shared ----------------------------------------------------------------------------

    def calibrated(self, logits: np.ndarray) -> np.ndarray:
        return calibrate(logits, self.temperature, self.calibration_bias)

    def decide_all(self, probs: np.ndarray) -> np.ndarray:
        """`decide` for every row of (n, 7) probabilities."""
        weighted = probs if self.decision_weights is None else probs * self.decision_weights
        return weighted.argmax(1)

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

    def predict_explained(
        self,
        images: Sequence[Image.Image],
        metadata: Sequence[meta.LesionMetadata | None] | None = None,
    ) -> list[Explained]:
        """`predict_batch` of all the images in one batch, each prediction with its maps and
        features where the runtime's forward pass gives them (see Explained); here, none."""
        predictions = self.predict_batch(images, batch_size=max(len(images), 1), metadata=metadata)
        return [Explained(prediction) for prediction in predictions]

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
            inputs, preprocess_ms = [], []
            for image in chunk:
                if not isinstance(image, Image.Image):
                    raise TypeError(f"expected a PIL.Image.Image, got {type(image).__name__}")
                began = time.perf_counter()
                inputs.append(self.preprocess(image))
                preprocess_ms.append((time.perf_counter() - began) * 1000.0)
            began = time.perf_counter()
            probs = self._probabilities(inputs, chunk_records)
            inference_ms = (time.perf_counter() - began) * 1000.0 / len(chunk)
            for row, prep, record in zip(probs, preprocess_ms, chunk_records, strict=True):
                timings = {"preprocess": prep, "inference": inference_ms}
                predictions.append(self._prediction(row, timings, record))
        return predictions
