"""The classifier a worker process serves, and the image gate and the embedding reduction
shipped beside it, each loaded once per process and kept, per version.

Which version is served is the model registry's active one (diagnosis.models.ModelVersion),
asked once per task: a promotion or a rollback reaches every running worker at its next task,
which loads the new version (and lets the old one go) without a restart. Before the registry
has an active version (a fresh install before its first worker start, a test's own models
folder) the version ml/models/CURRENT names is served, as it always was.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from ml.inference import CURRENT_FILE, Classifier, ClassifierNotInstalled

if TYPE_CHECKING:
    from ml.embedding import Embedder
    from ml.gate import Gate

logger = logging.getLogger(__name__)


def served_version() -> str:
    """The version to serve now: the registry's active one, else the one CURRENT names.
    Raises ml.inference.ClassifierNotInstalled when there is neither."""
    from diagnosis.selectors.model_version import active_version_name

    version = active_version_name()
    if version:
        return version
    current = Path(settings.ML_MODELS_ROOT) / CURRENT_FILE
    if not current.is_file() or not current.read_text().strip():
        raise ClassifierNotInstalled(f"no classifier installed: {current} not found or empty")
    return current.read_text().strip()


def get_classifier() -> Classifier:
    """The served version, loaded on first use; raises ml.inference.ClassifierNotInstalled.

    Cached per process and keyed by version: a worker pays a model's load time once, not once
    per task, and loads another the first time the registry names another. A failed load is
    not cached, so installing a model takes effect without restarting the worker.
    """
    return _load(str(settings.ML_MODELS_ROOT), served_version())


def get_shadow_classifier(version: str) -> Classifier:
    """A shadow version, kept beside the served one (each its own cache of one)."""
    return _load_shadow(str(settings.ML_MODELS_ROOT), version)


def _load_version(root: str, version: str) -> Classifier:
    import torch

    torch.set_num_threads(settings.ML_TORCH_THREADS)
    return Classifier.load(Path(root) / version)


_load = functools.lru_cache(maxsize=1)(_load_version)
_load_shadow = functools.lru_cache(maxsize=1)(_load_version)
# Tests (and anything that swaps ML_MODELS_ROOT) forget the loaded model this way, as before.
get_classifier.cache_clear = _load.cache_clear  # type: ignore[attr-defined]


def get_gate() -> Gate | None:
    """The image gate fitted for the served classifier (`gate.json` and `gate.npz` in its
    model directory), or None for a model shipped without one (v1), whose analyses run as
    they always did. Raises ClassifierNotInstalled as get_classifier does.

    Kept per process beside the classifier it was fitted for: a classifier loaded anew (a
    model installed later, a test's own model) gets its own gate, never the last one's.
    """
    return _gate_for(get_classifier())


def gate_for(classifier: Classifier) -> Gate | None:
    """The image gate of any loaded classifier (a shadow version's, say), or None."""
    return _gate_for(classifier)


# Two: the served version's gate and a shadow version's, each kept beside its classifier.
@functools.lru_cache(maxsize=2)
def _gate_for(classifier: Classifier) -> Gate | None:
    from PIL import Image

    from ml.gate import Gate, GateNotFitted

    try:
        gate = Gate.load(classifier)
    except GateNotFitted:
        logger.info("model %s has no image gate; images are analysed unchecked", classifier.version)
        return None
    # Run the gate's feature network once now, so the first image does not pay for it.
    gate.ood_scores([Image.new("RGB", (64, 64), (180, 120, 100))])
    return gate


def get_embedder() -> Embedder | None:
    """The embedding of the served classifier (its pooled features through the reduction
    shipped beside it, ml.embedding), or None for a model shipped without one: its results
    store no embedding and have no similar cases. Raises ClassifierNotInstalled as
    get_classifier does. Kept per process beside its classifier, like the gate."""
    return _embedder_for(get_classifier())


def embedder_for(classifier: Classifier) -> Embedder | None:
    """The embedding of a loaded classifier (the one an analysis was predicted by), or None."""
    return _embedder_for(classifier)


@functools.lru_cache(maxsize=1)
def _embedder_for(classifier: Classifier) -> Embedder | None:
    from ml.embedding import Embedder, EmbeddingNotFitted

    try:
        return Embedder.load(classifier)
    except EmbeddingNotFitted:
        logger.info("model %s has no embedding reduction; no similar cases", classifier.version)
        return None
