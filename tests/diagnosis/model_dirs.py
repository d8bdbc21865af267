"""Exported model directories for the registry's tests, written the way ml.export writes them.

- `random_model`: a v2 network (LesionNet with metadata) with random weights at 128 px, fast to
  load, with made-up shipped validation figures when asked; for the worker's and the gate's
  plumbing.
- `shipped`: a shipped version (ml/models/<version>), linked into a test's models folder.
- `degraded_copy`: the shipped v2 with its melanoma and BCC/AK outputs pushed down, so it
  calls (almost) every lesion routine: a real exported model, deliberately worse.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from django.conf import settings

from ml.classes import class_index
from ml.export import write_model_dir
from ml.preprocessing import PreprocessConfig

SHIPPED_ROOT = Path(settings.BASE_DIR) / "ml" / "models"
V1 = "ham10000-lite0-v1"
V2 = "ham10000-lite0-v2"


def shipped_dir(version: str) -> Path:
    path = SHIPPED_ROOT / version
    if not (path / "weights.pt").is_file():
        pytest.skip(f"{version} is not installed under {SHIPPED_ROOT}")
    return path


def link_shipped(root: Path, version: str) -> Path:
    """The shipped version, linked (not copied) into `root`."""
    source = shipped_dir(version)
    root.mkdir(parents=True, exist_ok=True)
    target = root / version
    target.symlink_to(source, target_is_directory=True)
    return target


def validation(balanced_accuracy: float, sensitivity: float, n_melanoma: int = 80) -> dict:
    """Card validation figures as ml.export writes them (the parts the gate reads)."""
    return {
        "n": 700,
        "balanced_accuracy": balanced_accuracy,
        "melanoma": {
            "n_melanoma": n_melanoma,
            "auc": 0.9,
            "at_threshold": {"moderate": {"threshold": 0.1, "sensitivity": sensitivity}},
        },
    }


def random_card(*, figures: dict | None = None) -> dict:
    config = PreprocessConfig(input_size=128)
    card = {
        "network": "lesionnet",
        "architecture": "tf_efficientnet_lite0",
        "input_size": config.input_size,
        "preprocessing": config.as_dict(),
        "classes": ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"],
        "metadata": {"used": True},
        "temperature": 1.3,
        "thresholds": {"moderate": 0.1, "high": 0.3},
        "tta": 0,
    }
    if figures is not None:
        card["validation"] = figures
    return card


def random_model(
    root: Path, version: str, *, figures: dict | None = None, seed: int = 0, current=False
) -> Path:
    from ml.model import LesionNet

    torch.manual_seed(seed)
    model = LesionNet(use_metadata=True)
    torch.nn.init.normal_(model.classifier.weight, std=0.5)
    root.mkdir(parents=True, exist_ok=True)
    return write_model_dir(
        root, version, model.state_dict(), random_card(figures=figures), set_current=current
    )


def degraded_copy(root: Path, version: str = f"{V2}-degraded") -> Path:
    source = shipped_dir(V2)
    state = torch.load(source / "weights.pt", map_location="cpu", weights_only=True)
    for code in ("mel", "bcc", "akiec"):
        state["classifier.bias"][class_index(code)] -= 20.0
    card = json.loads((source / "card.json").read_text())
    # Served by torch only: the ONNX forms were measured for the original weights.
    card.pop("runtimes", None)
    card["runtime"] = "torch"
    root.mkdir(parents=True, exist_ok=True)
    return write_model_dir(root, version, state, card, set_current=False)
