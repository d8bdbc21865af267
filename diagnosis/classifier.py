"""The classifier a worker process serves, and the image gate and the embedding reduction
shipped beside it, each loaded once per process and kept."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from django.conf import settings

from ml.inference import Classifier

if TYPE_CHECKING:
    from ml.embedding import Embedder
    from ml.gate import Gate

logger = logging.getLogger(__name__)


@functools.cache
def get_classifier() -> Classifier:
    """Load ml/models/CURRENT on first use; raises ml.inference.ClassifierNotInstalled.

    Cached per process: a worker pays the model's load time once, not once per task. A failed
    load is not cached, so installing a model takes effect without restarting the worker.
    """
    import torch

    torch.set_num_threads(settings.ML_TORCH_THREADS)
    return Classifier.load_current(settings.ML_MODELS_ROOT)


def get_gate() -> Gate | None:
    """The image gate fitted for the served classifier (`gate.json` and `gate.npz` in its
    model directory), or None for a model shipped without one (v1), whose analyses run as
    they always did. Raises ClassifierNotInstalled as get_classifier does.

    Kept per process beside the classifier it was fitted for: a classifier loaded anew (a
    model installed later, a test's own model) gets its own gate, never the last one's.
    """
    return _gate_for(get_classifier())


@functools.lru_cache(maxsize=1)
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


@functools.lru_cache(maxsize=1)
def _embedder_for(classifier: Classifier) -> Embedder | None:
    from ml.embedding import Embedder, EmbeddingNotFitted

    try:
        return Embedder.load(classifier)
    except EmbeddingNotFitted:
        logger.info("model %s has no embedding reduction; no similar cases", classifier.version)
        return None
