"""The classifier's embedding of an image, for finding the most similar confirmed cases.

    python -m ml.embedding fit [--model-dir ml/models/<version>] [--data DIR] [--dims 64]

An image's embedding is the network's pooled image features (for a LesionNet the backbone's
global-average-pooled 1280 features, before the metadata branch and the head: what the image
looks like to the model, not the patient's age or site), centred and projected onto the first
`dims` principal components fitted offline on the HAM10000 training split, then scaled to unit
length. Nearness is the cosine distance, 1 - cos, between 0 (the same direction) and 2.

The reduction is shipped beside the model (`embedding.npz`, its sha256 and what it was fitted on
recorded in the card's `embedding` section), so the worker and this command embed an image the
same way; a model without it stores no embeddings and the portal shows no similar cases for its
results. Vectors of different models or reductions are different spaces (Embedder.space) and
are never compared.

`ml.neighbours.nearest` is the lookup (NumPy only, so the web processes that search need no
torch): a brute-force scan of the clinic's vectors (one matrix-vector
product and a partial sort). PostgreSQL here has no vector extension packaged; an approximate
index (faiss, hnswlib) would add a native dependency for a scan that takes a few milliseconds
at 100,000 vectors (bench/similar_cases.py), and exact answers are easier to trust.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ml.neighbours import nearest
from ml.onnx_serving import OnnxClassifier
from ml.runtimes import file_sha256
from ml.served import CARD_FILE, MODELS_ROOT, CardModel

if TYPE_CHECKING:
    import torch

    from ml.inference import Classifier

EMBEDDING_FILE = "embedding.npz"
DEFAULT_DIMS = 64
BATCH = 32


class EmbeddingNotFitted(Exception):
    """The model directory has no embedding reduction: run `python -m ml.embedding fit`."""


@dataclass(frozen=True)
class Reduction:
    """A PCA: the training features' mean and the first principal axes (rows)."""

    mean: np.ndarray  # (features,)
    components: np.ndarray  # (dims, features)

    @property
    def dims(self) -> int:
        return int(self.components.shape[0])

    def apply(self, features: np.ndarray) -> np.ndarray:
        """(n, features) pooled features -> (n, dims) unit vectors, float32."""
        reduced = (np.asarray(features, dtype=np.float64) - self.mean) @ self.components.T
        norms = np.linalg.norm(reduced, axis=1, keepdims=True)
        return (reduced / np.maximum(norms, 1e-12)).astype(np.float32)

    def save(self, path: Path) -> str:
        """Write the reduction; returns the file's sha256."""
        with open(path, "wb") as handle:
            np.savez(
                handle,
                mean=self.mean.astype(np.float32),
                components=self.components.astype(np.float32),
            )
        return file_sha256(path)

    @classmethod
    def load(cls, path: Path) -> Reduction:
        with np.load(path) as data:
            return cls(
                mean=data["mean"].astype(np.float64),
                components=data["components"].astype(np.float64),
            )


def fit_reduction(features: np.ndarray, dims: int = DEFAULT_DIMS) -> tuple[Reduction, np.ndarray]:
    """The PCA of `features` (n, d) keeping `dims` axes, and each axis's share of the variance.
    Each axis's sign is fixed (its largest coefficient positive), so a refit on the same
    features gives the same file."""
    features = np.asarray(features, dtype=np.float64)
    if dims > min(features.shape):
        raise ValueError(f"cannot keep {dims} axes of {features.shape[0]} x {features.shape[1]}")
    mean = features.mean(axis=0)
    _, singular, axes = np.linalg.svd(features - mean, full_matrices=False)
    components = axes[:dims]
    signs = np.sign(components[np.arange(dims), np.abs(components).argmax(axis=1)])
    components = components * signs[:, None]
    variance = singular**2
    return Reduction(mean=mean, components=components), (variance / variance.sum())[:dims]


def pooled_features(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """The network's pooled image features (n, d) of a preprocessed batch: a LesionNet's
    backbone output, an ensemble's members' side by side, a timm model's pre-logits."""
    import torch

    from ml.model import LesionEnsemble, LesionNet

    if isinstance(model, LesionNet):
        return model.backbone(batch)
    if isinstance(model, LesionEnsemble):
        return torch.cat([member.backbone(batch) for member in model.members], dim=1)
    return model.forward_head(model.forward_features(batch), pre_logits=True)


def image_features(classifier: CardModel, images: Sequence[Image.Image]) -> np.ndarray:
    """Pooled features (n, d) of images, preprocessed exactly as the classifier's predictions.
    Computed on the PyTorch network (the reference every runtime was checked against), or
    for a classifier served by ONNX Runtime by its graph's `features` output (no torch)."""
    if isinstance(classifier, OnnxClassifier):
        return classifier.features(images)
    import torch

    out = []
    for start in range(0, len(images), BATCH):
        batch = torch.stack([classifier.preprocess(i) for i in images[start : start + BATCH]])
        # The classifier's lock: Grad-CAM hooks the same network.
        with classifier._lock, torch.inference_mode():
            pooled = pooled_features(
                classifier.model, batch.contiguous(memory_format=torch.channels_last)
            )
        out.append(pooled.float().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


class Embedder:
    """One classifier's embedding: its pooled features through the shipped reduction."""

    def __init__(self, classifier: CardModel, reduction: Reduction, sha256: str) -> None:
        self.classifier = classifier
        self.reduction = reduction
        self.sha256 = sha256

    @property
    def space(self) -> str:
        """The name of the space its vectors live in: model version, dims, reduction file."""
        return f"{self.classifier.version}/pca{self.reduction.dims}-{self.sha256[:12]}"

    @classmethod
    def load(cls, classifier: CardModel) -> Embedder:
        """The reduction the card names. EmbeddingNotFitted for a model without one; ValueError
        when the file is not the one the card recorded."""
        entry = classifier.card.get("embedding")
        if not entry:
            raise EmbeddingNotFitted(f"{classifier.version} ships no embedding reduction")
        path = classifier.model_dir / entry["file"]
        if not path.is_file():
            raise EmbeddingNotFitted(f"{path} not found")
        sha256 = file_sha256(path)
        if sha256 != entry["sha256"]:
            raise ValueError(f"{path} has sha256 {sha256}; the card expects {entry['sha256']}")
        return cls(classifier, Reduction.load(path), sha256)

    def of(self, image: Image.Image) -> np.ndarray:
        """The image's embedding: (dims,) float32, unit length."""
        return self.of_all([image])[0]

    def of_all(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embeddings (n, dims) of several images, their features computed as one batch."""
        return self.of_features(image_features(self.classifier, images))

    def of_features(self, features: np.ndarray) -> np.ndarray:
        """Embeddings (n, dims) of pooled features (n, d) already computed by this classifier
        (the `features` of its predictions, ml.served.Explained): no pass through the network."""
        return self.reduction.apply(features)


# --- fitting -------------------------------------------------------------------------------


def _load_images(paths: Sequence[Path]) -> list[Image.Image]:
    images = []
    for path in paths:
        with Image.open(path) as image:
            images.append(image.convert("RGB"))
    return images


def _features_of(classifier: Classifier, paths: Sequence[Path], what: str) -> np.ndarray:
    started, parts = time.perf_counter(), []
    for start in range(0, len(paths), 256):
        parts.append(image_features(classifier, _load_images(paths[start : start + 256])))
        done = min(start + 256, len(paths))
        rate = done / (time.perf_counter() - started)
        print(f"  {what}: {done}/{len(paths)} images ({rate:.1f}/s)", file=sys.stderr)
    return np.concatenate(parts)


def _neighbour_agreement(
    train: np.ndarray, train_dx: list[str], query: np.ndarray, query_dx: list[str]
) -> float:
    """The share of query images whose nearest training image has the same diagnosis."""
    agree = 0
    for vector, dx in zip(query, query_dx, strict=True):
        index, _ = nearest(train, vector, 1)
        agree += train_dx[int(index[0])] == dx
    return agree / len(query_dx)


def fit(model_dir: Path, data_dir: Path, dims: int, limit: int, seed: int) -> dict:
    """Fit the reduction on up to `limit` training lesions (one image each, chosen at random
    with `seed`), save it beside the model, record it in the card, and measure on validation
    lesions how often the nearest training image shares the diagnosis, reduced and not."""
    from ml.data import read_split

    rng = np.random.default_rng(seed)
    split = read_split()
    one_per_lesion = {}
    for record in split["train"]:
        one_per_lesion.setdefault(record.lesion_id, record)
    train = list(one_per_lesion.values())
    train = [train[i] for i in sorted(rng.permutation(len(train))[:limit])]
    val_lesions = {}
    for record in split["val"]:
        val_lesions.setdefault(record.lesion_id, record)
    val = list(val_lesions.values())
    val = [val[i] for i in sorted(rng.permutation(len(val))[: max(1, limit // 3)])]

    from ml.inference import Classifier

    classifier = Classifier.load(model_dir, warm_up=False)
    print(f"fitting on {len(train)} training lesions, {classifier.version}", file=sys.stderr)
    train_features = _features_of(
        classifier, [data_dir / "images" / f"{r.image_id}.jpg" for r in train], "train"
    )
    val_features = _features_of(
        classifier, [data_dir / "images" / f"{r.image_id}.jpg" for r in val], "validation"
    )
    reduction, explained = fit_reduction(train_features, dims)
    sha256 = reduction.save(model_dir / EMBEDDING_FILE)

    def unit(x: np.ndarray) -> np.ndarray:
        centred = x - reduction.mean
        return (centred / np.linalg.norm(centred, axis=1, keepdims=True)).astype(np.float32)

    train_dx, val_dx = [r.dx for r in train], [r.dx for r in val]
    entry = {
        "file": EMBEDDING_FILE,
        "sha256": sha256,
        "dims": dims,
        "features": (
            f"pooled image features of the network ({train_features.shape[1]}), centred, "
            f"projected on {dims} principal axes, unit length; cosine distance"
        ),
        "fitted_on": {
            "data": "HAM10000 training split (ml/splits/ham10000_lesion_split.csv)",
            "split_sha256": classifier.card.get("split_sha256", ""),
            "images": len(train),
            "one_image_per_lesion": True,
            "seed": seed,
        },
        "explained_variance": round(float(explained.sum()), 4),
        "nearest_training_image_same_diagnosis": {
            "validation_lesions": len(val),
            "reduced": round(
                _neighbour_agreement(
                    reduction.apply(train_features), train_dx, reduction.apply(val_features), val_dx
                ),
                4,
            ),
            "full_features": round(
                _neighbour_agreement(unit(train_features), train_dx, unit(val_features), val_dx),
                4,
            ),
        },
        "command": f"python -m ml.embedding fit --dims {dims} --limit {limit} --seed {seed}",
    }
    card_path = model_dir / CARD_FILE
    card = json.loads(card_path.read_text())
    card["embedding"] = entry
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fitting = sub.add_parser("fit", help="fit the PCA on the training split and ship it")
    fitting.add_argument("--model-dir", type=Path, default=None)
    fitting.add_argument("--data", type=Path, default=None, help="HAM10000 directory")
    fitting.add_argument("--dims", type=int, default=DEFAULT_DIMS)
    fitting.add_argument("--limit", type=int, default=3000, help="training lesions to fit on")
    fitting.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from ml.data import default_data_dir

    model_dir = args.model_dir
    if model_dir is None:
        model_dir = MODELS_ROOT / (MODELS_ROOT / "CURRENT").read_text().strip()
    entry = fit(model_dir, args.data or default_data_dir(), args.dims, args.limit, args.seed)
    print(json.dumps(entry, indent=2))


if __name__ == "__main__":
    main()
