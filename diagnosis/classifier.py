"""The classifier a worker process serves, loaded once per process and kept."""

from __future__ import annotations

import functools

from django.conf import settings

from ml.inference import Classifier


@functools.cache
def get_classifier() -> Classifier:
    """Load ml/models/CURRENT on first use; raises ml.inference.ClassifierNotInstalled.

    Cached per process: a worker pays the model's load time once, not once per task. A failed
    load is not cached, so installing a model takes effect without restarting the worker.
    """
    import torch

    torch.set_num_threads(settings.ML_TORCH_THREADS)
    return Classifier.load_current(settings.ML_MODELS_ROOT)
