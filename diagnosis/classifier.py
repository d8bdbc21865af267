"""The classifier a worker process serves, and the image gate and the embedding reduction
shipped beside it, each loaded once per process and kept, per version.

Which version is served is the model registry's active one (diagnosis.models.ModelVersion),
asked once per task: a promotion or a rollback reaches every running worker at its next task,
which loads the new version (and lets the old one go) without a restart. Before the registry
has an active version (a fresh install before its first worker start, a test's own models
folder) the version ml/models/CURRENT names is served, as it always was.

Which runtime serves it is settings.ML_RUNTIME: `auto` measures the card's servable runtimes
on this CPU as the version loads and serves the fastest (ml.runtime_choice); a name forces it.
An ONNX runtime is served by ml.onnx_serving, which never imports torch; the choice and its
figures are logged, kept in the shared cache for /readyz, and exported as a gauge.
"""

from __future__ import annotations

import functools
import json
import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from ml.onnx_serving import ONNX_RUNTIMES, OnnxClassifier
from ml.runtime_choice import AUTO, Choice, candidates, choose
from ml.served import CURRENT_FILE, CardModel, ClassifierNotInstalled, read_card

if TYPE_CHECKING:
    from ml.embedding import Embedder
    from ml.gate import Gate

logger = logging.getLogger(__name__)

# Where a worker leaves its runtime choice for /readyz (the web processes share the cache).
RUNTIME_CACHE_KEY = "ml:served-runtime"
RUNTIME_CACHE_TTL_S = 7 * 24 * 3600
# The same record as a file in the host's var/ folder: on the embedded defaults the cache is
# each process's own memory, so /readyz in the web process could never see the worker's.
RUNTIME_FILE = "served-runtime.json"


def served_version() -> str:
    """The version to serve now: the registry's active one, else the one CURRENT names.
    Raises ml.served.ClassifierNotInstalled when there is neither."""
    from diagnosis.selectors.model_version import active_version_name

    version = active_version_name()
    if version:
        return version
    current = Path(settings.ML_MODELS_ROOT) / CURRENT_FILE
    if not current.is_file() or not current.read_text().strip():
        raise ClassifierNotInstalled(f"no classifier installed: {current} not found or empty")
    return current.read_text().strip()


def get_classifier() -> CardModel:
    """The served version, loaded on first use; raises ml.served.ClassifierNotInstalled.

    Cached per process and keyed by version: a worker pays a model's load time once, not once
    per task, and loads another the first time the registry names another. A failed load is
    not cached, so installing a model takes effect without restarting the worker.
    """
    return _load(str(settings.ML_MODELS_ROOT), served_version())


def get_shadow_classifier(version: str) -> CardModel:
    """A shadow version, kept beside the served one (each its own cache of one)."""
    return _load_shadow(str(settings.ML_MODELS_ROOT), version)


def load_runtime(model_dir: Path, runtime: str) -> CardModel:
    """`model_dir` served by `runtime`: ONNX Runtime without torch, or the PyTorch network."""
    if runtime in ONNX_RUNTIMES:
        return OnnxClassifier.load(model_dir, runtime=runtime, threads=settings.ML_TORCH_THREADS)
    import torch

    from ml.inference import Classifier

    torch.set_num_threads(settings.ML_TORCH_THREADS)
    return Classifier.load(model_dir, runtime=runtime, threads=settings.ML_TORCH_THREADS)


def _load_version(root: str, version: str) -> CardModel:
    model_dir = Path(root) / version
    choice = choose(model_dir, settings.ML_RUNTIME, threads=settings.ML_TORCH_THREADS)
    classifier = load_runtime(model_dir, choice.runtime)
    runtime_record(version, choice)
    return classifier


def _load_shadow_version(root: str, version: str) -> CardModel:
    """A shadow version by the runtime ML_RUNTIME forces, else (auto) by its first servable
    ONNX form, else its card's: a shadow is compared with the served results, not raced on
    this CPU, and in a worker serving ONNX it should not bring torch in either."""
    model_dir = Path(root) / version
    if settings.ML_RUNTIME != AUTO:
        return load_runtime(model_dir, choose(model_dir, settings.ML_RUNTIME).runtime)
    names = candidates(read_card(model_dir))
    onnx = [name for name in names if name in ONNX_RUNTIMES]
    return load_runtime(model_dir, (onnx or names)[0])


def verification_runtime(model_dir: Path) -> str | None:
    """The form ml.verify should load `model_dir` with in this worker before registering it.
    A worker that may serve torch (ML_RUNTIME names a torch runtime) loads the PyTorch
    network, as before. Otherwise the ONNX form this worker would serve, or, for a version
    without one, None: files and card are checked, and the load waits for a process that
    serves it, so that a worker serving ONNX never imports torch at start. A card that
    cannot be read is ml.verify's to refuse, in words."""
    if settings.ML_RUNTIME != AUTO and settings.ML_RUNTIME not in ONNX_RUNTIMES:
        return "torch"
    try:
        names = candidates(read_card(model_dir))
    except Exception:  # noqa: BLE001 - verify_model_dir says what is wrong, in words
        return "torch"
    if settings.ML_RUNTIME in names:
        return settings.ML_RUNTIME
    onnx = [name for name in names if name in ONNX_RUNTIMES]
    return onnx[0] if onnx else None


_load = functools.lru_cache(maxsize=1)(_load_version)
_load_shadow = functools.lru_cache(maxsize=1)(_load_shadow_version)
# Tests (and anything that swaps ML_MODELS_ROOT) forget the loaded model this way, as before.
get_classifier.cache_clear = _load.cache_clear  # type: ignore[attr-defined]


def runtime_record(version: str, choice: Choice) -> None:
    """Log the runtime this worker process serves, leave it for /readyz in the shared cache,
    and set the gauge of each measured runtime's throughput."""
    from melanoma_portal import metrics

    logger.info(
        "serving %s by %s (ML_RUNTIME=%s: %s) %s",
        version,
        choice.runtime,
        choice.setting,
        choice.reason,
        choice.images_per_s or "",
    )
    report = {
        **choice.as_dict(),
        "version": version,
        "host": socket.gethostname(),
        "at": timezone.now().isoformat(timespec="seconds"),
    }
    try:
        cache.set(RUNTIME_CACHE_KEY, report, RUNTIME_CACHE_TTL_S)
    except Exception:  # noqa: BLE001 - an unreachable cache must not stop the worker serving
        logger.exception("the served runtime could not be recorded in the cache")
    path = Path(settings.VAR_DIR) / RUNTIME_FILE
    try:
        scratch = path.with_name(f".{RUNTIME_FILE}.{socket.gethostname()}.tmp")
        scratch.write_text(json.dumps(report))
        scratch.replace(path)  # atomic: a reader never sees half a record
    except OSError:
        logger.exception("the served runtime could not be recorded in %s", path)
    for runtime, rate in (choice.images_per_s or {choice.runtime: float("nan")}).items():
        metrics.RUNTIME_THROUGHPUT.labels(
            model_version=version, runtime=runtime, served=str(runtime == choice.runtime).lower()
        ).set(rate)


def runtime_report() -> dict | None:
    """What the last worker to load a model recorded (runtime_record), or None: the shared
    cache first, else the record a worker on this host left in var/ (embedded defaults)."""
    report = cache.get(RUNTIME_CACHE_KEY)
    if report is not None:
        return report
    try:
        return json.loads((Path(settings.VAR_DIR) / RUNTIME_FILE).read_text())
    except (OSError, ValueError):
        return None


def get_gate() -> Gate | None:
    """The image gate fitted for the served classifier (`gate.json` and `gate.npz` in its
    model directory), or None for a model shipped without one (v1), whose analyses run as
    they always did. Raises ClassifierNotInstalled as get_classifier does.

    Kept per process beside the classifier it was fitted for: a classifier loaded anew (a
    model installed later, a test's own model) gets its own gate, never the last one's.
    """
    return _gate_for(get_classifier())


def gate_for(classifier: CardModel) -> Gate | None:
    """The image gate of any loaded classifier (a shadow version's, say), or None."""
    return _gate_for(classifier)


# Two: the served version's gate and a shadow version's, each kept beside its classifier.
@functools.lru_cache(maxsize=2)
def _gate_for(classifier: CardModel) -> Gate | None:
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


def embedder_for(classifier: CardModel) -> Embedder | None:
    """The embedding of a loaded classifier (the one an analysis was predicted by), or None."""
    return _embedder_for(classifier)


@functools.lru_cache(maxsize=1)
def _embedder_for(classifier: CardModel) -> Embedder | None:
    from ml.embedding import Embedder, EmbeddingNotFitted

    try:
        return Embedder.load(classifier)
    except EmbeddingNotFitted:
        logger.info("model %s has no embedding reduction; no similar cases", classifier.version)
        return None
