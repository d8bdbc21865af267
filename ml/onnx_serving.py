"""Serving an ONNX runtime without torch: the classifier, the image gate's feature network and
the similar-cases features, all through ONNX Runtime, numpy and Pillow.

    classifier = OnnxClassifier.load(model_dir, runtime="onnx-fp32")
    classifier.predict(image, record)        # the same Prediction as ml.inference.Classifier
    classifier.heatmap(image, "mel")         # the CAM output, drawn by ml.heatmap
    classifier.features([image])             # pooled features, as ml.embedding.pooled_features

Why: a worker process that imports torch holds about 780 MB before it has loaded a model, and
ONNX Runtime runs this network several times faster on a CPU (ml/EXPERIMENTS.md). The exported
graph (ml.runtimes.export_onnx) has three outputs, read by name: logits, the class activation
maps of the first image body (for global pooling + a linear head, normalised, equal to
Grad-CAM), and the pooled image features. The gate's ImageNet Lite0 is exported beside it
(`gate_features.onnx`, `python -m ml.gate export-onnx`). Every file is served only if its
checksum is the one recorded when it was measured against the PyTorch reference.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ml import metadata as meta
from ml.classes import class_index
from ml.heatmap import cam_to_image, normalised_cam, overlay
from ml.imaging import WORKING_MAX_PIXELS, working_copy
from ml.preprocess_config import PreprocessConfig
from ml.runtimes import OnnxRunner, file_sha256, numpy_input, numpy_views, onnx_session
from ml.served import BATCH_SIZE, CardModel, Explained, read_card, resolve_threads

ONNX_RUNTIMES: tuple[str, ...] = ("onnx-fp32", "onnx-int8")


def servable_form(model_dir: Path, card: dict, runtime: str) -> dict:
    """The card's entry for `runtime`, refused unless export measured it as servable."""
    entry = card.get("runtimes", {}).get(runtime)
    if entry is None:
        raise ValueError(f"{model_dir} has no {runtime} form; run python -m ml.runtimes")
    if not entry.get("servable"):
        raise ValueError(f"{runtime} of {model_dir} failed its parity check: {entry['parity']}")
    return entry


def measured_file(model_dir: Path, entry: dict) -> Path:
    """The entry's file, refused unless it is the one the card measured."""
    path = model_dir / entry["file"]
    if not path.is_file() or file_sha256(path) != entry["sha256"]:
        raise ValueError(f"{path} is missing or is not the file the card measured")
    return path


def onnx_runner(model_dir: Path, card: dict, runtime: str, threads: int) -> OnnxRunner:
    """The card's ONNX form of the network, refused unless export measured it as servable and
    the file is the one measured."""
    entry = servable_form(model_dir, card, runtime)
    return OnnxRunner(measured_file(model_dir, entry), threads)


class OnnxClassifier(CardModel):
    """A v2 model served by ONNX Runtime: numpy in, numpy out, no torch in the process."""

    def __init__(
        self, card: dict, model_dir: Path, runtime: str, runner: OnnxRunner, threads: int = 1
    ) -> None:
        super().__init__(card, model_dir, threads)
        self.runtime = runtime
        self.runner = runner

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        *,
        runtime: str | None = None,
        threads: int | None = None,
        warm_up: bool = True,
    ) -> OnnxClassifier:
        """Load the ONNX form `runtime` (default the card's `runtime`) of `model_dir`. Raises
        ClassifierNotInstalled when the card or weights are missing (the weights stay the
        reference a directory is verified against), ValueError for a runtime that is not an
        ONNX one, failed its parity check, or whose file is not the one the card measured."""
        model_dir = Path(model_dir)
        card = read_card(model_dir)
        runtime = runtime or card.get("runtime", "torch")
        if runtime not in ONNX_RUNTIMES:
            raise ValueError(
                f"{runtime!r} is not an ONNX runtime ({', '.join(ONNX_RUNTIMES)}); "
                "ml.inference.Classifier serves the PyTorch ones"
            )
        threads = resolve_threads(threads)
        runner = onnx_runner(model_dir, card, runtime, threads)
        classifier = cls({**card, "runtime": runtime}, model_dir, runtime, runner, threads)
        if warm_up:
            # The first run plans the kernels; pay for it at start-up, not in an analysis.
            size = classifier.config.input_size
            classifier.forward(np.zeros((1, 3, size, size), dtype=np.float32))
        return classifier

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """(3, H, W) float32 input, numbers identical to ml.preprocessing.to_model_input."""
        if not isinstance(image, Image.Image):
            raise TypeError(f"expected a PIL.Image.Image, got {type(image).__name__}")
        return numpy_input(image, self.config)

    def metadata_array(
        self, metadata: Sequence[meta.LesionMetadata | None] | None, n: int
    ) -> np.ndarray:
        """(n, features) vectors; all 'missing' for an image-only network (its graph has no
        metadata input, and the runner feeds only the inputs a graph has)."""
        records = list(metadata) if metadata is not None else [None] * n
        if len(records) != n:
            raise ValueError(f"{len(records)} metadata records for {n} images")
        if not self.uses_metadata:
            records = [None] * n
        return (
            np.stack([meta.encode_array(r) for r in records])
            if n
            else np.zeros((0, meta.N_FEATURES), np.float32)
        )

    def forward(self, batch: np.ndarray, metadata: np.ndarray | None = None) -> np.ndarray:
        """Uncalibrated logits (n, 7), averaged over the card's TTA views."""
        if metadata is None:
            metadata = self.metadata_array(None, len(batch))
        return self.runner.logits(batch, metadata, self.tta or 1)

    def _probabilities(
        self, inputs: list[np.ndarray], records: list[meta.LesionMetadata | None]
    ) -> np.ndarray:
        return self.calibrated(
            self.forward(np.stack(inputs), self.metadata_array(records, len(inputs)))
        )

    def predict_explained(
        self,
        images: Sequence[Image.Image],
        metadata: Sequence[meta.LesionMetadata | None] | None = None,
    ) -> list[Explained]:
        """The predictions of all the images, their class activation maps and pooled features
        from ONE run of the graph (its three outputs): a worker's batch needs no second pass
        for its heatmaps or its embeddings. The maps and features are the plain view's, as
        `heatmap` and `features` compute them; the logits are averaged over the card's TTA
        views, as `predict_batch` does."""
        if metadata is not None and len(metadata) != len(images):
            raise ValueError(f"{len(metadata)} metadata records for {len(images)} images")
        if not images:
            return []
        records = list(metadata) if metadata is not None else [None] * len(images)
        inputs, preprocess_ms = [], []
        for image in images:
            began = time.perf_counter()
            inputs.append(self.preprocess(image))
            preprocess_ms.append((time.perf_counter() - began) * 1000.0)
        began = time.perf_counter()
        n, views = len(inputs), self.tta or 1
        batch = np.stack(inputs)
        vectors = self.metadata_array(records, n)
        if views > 1:  # the plain view first, as numpy_views orders them
            batch, vectors = np.concatenate(numpy_views(batch, views)), np.tile(vectors, (views, 1))
        out = self.runner.outputs(batch, vectors, ("logits", "cams", "features"))
        logits = out["logits"].reshape(views, n, -1).mean(0)
        probs = self.calibrated(logits)
        inference_ms = (time.perf_counter() - began) * 1000.0 / n
        return [
            Explained(
                self._prediction(probs[k], {"preprocess": prep, "inference": inference_ms}, rec),
                cams=out["cams"][k],
                features=out["features"][k],
            )
            for k, (prep, rec) in enumerate(zip(preprocess_ms, records, strict=True))
        ]

    def heatmap(
        self,
        image: Image.Image,
        target: str,
        *,
        max_pixels: int = WORKING_MAX_PIXELS,
        cams: np.ndarray | None = None,
    ) -> Image.Image:
        """The class activation map for `target` over the image (as ml.inference.Classifier's
        heatmap: a working copy of at most `max_pixels`, the plain view, the crop box).

        `cams`, the image's maps from `predict_explained`, saves the forward pass; they are
        used only when the working copy is the image itself (else they are of other pixels)."""
        index = class_index(target)
        picture = working_copy(image, max_pixels)
        if cams is None or picture.size != image.size:
            rgb = self.preprocess(picture)[None]
            cams = self.runner.outputs(rgb, self.metadata_array(None, 1), ("cams",))["cams"][0]
        full = cam_to_image(normalised_cam(cams, index), picture.size, self.config)
        return overlay(picture, full)

    def features(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Pooled image features (n, d) of images, as ml.embedding.pooled_features gives on
        the PyTorch network (members side by side for an ensemble)."""
        out = []
        for start in range(0, len(images), BATCH_SIZE):
            batch = np.stack([self.preprocess(i) for i in images[start : start + BATCH_SIZE]])
            vectors = self.metadata_array(None, len(batch))
            out.append(self.runner.outputs(batch, vectors, ("features",))["features"])
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


class OnnxImageFeatures:
    """The image gate's feature network (the ImageNet Lite0, pooled) through ONNX Runtime:
    the torch-free twin of ml.gate.ImageNetFeatures, loaded from `gate_features.onnx` once
    its checksum matches the one gate.json records."""

    def __init__(self, path: Path, config: PreprocessConfig, threads: int = 1) -> None:
        self.session = onnx_session(path, threads)
        self.config = config

    @classmethod
    def load(
        cls, model_dir: Path, entry: dict, config: PreprocessConfig, threads: int = 1
    ) -> OnnxImageFeatures:
        """From gate.json's `features_onnx` entry; ValueError when the file is not that one."""
        path = model_dir / entry["file"]
        if not path.is_file() or file_sha256(path) != entry["sha256"]:
            raise ValueError(f"{path} is missing or is not the file gate.json records")
        return cls(path, config, threads)

    def of(self, images: Sequence[Image.Image]) -> np.ndarray:
        out = []
        for start in range(0, len(images), BATCH_SIZE):
            batch = np.stack(
                [numpy_input(i, self.config) for i in images[start : start + BATCH_SIZE]]
            )
            out.append(self.session.run(["features"], {"images": batch})[0])
        return np.concatenate(out)
