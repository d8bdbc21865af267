"""Fixtures for the classifier package's tests: none of them needs Django.

A tiny installed model (random weights, real card and file layout) lets the inference contract
be tested on any machine; tests that need the HAM10000 images or the shipped model skip with
the reason when those are not there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ml.classes import CLASSES
from ml.data import default_data_dir
from ml.export import write_model_dir
from ml.inference import CURRENT_FILE, MODELS_ROOT, Classifier
from ml.model import ARCHITECTURE, LesionNet
from ml.preprocessing import PreprocessConfig

TEST_VERSION = "test-random-v0"


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    # Tests share a two-core machine with training and the portal's own tests.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = default_data_dir()
    if not (path / "metadata.csv").is_file():
        pytest.skip(f"HAM10000 not found at {path} (set HAM10000_DIR)")
    return path


def make_card(config: PreprocessConfig, *, tta: bool = False) -> dict:
    return {
        "architecture": ARCHITECTURE,
        "input_size": config.input_size,
        "preprocessing": config.as_dict(),
        "classes": list(CLASSES),
        "temperature": 1.5,
        "thresholds": {"moderate": 0.1, "high": 0.3},
        "tta": tta,
    }


def random_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    import timm

    torch.manual_seed(seed)
    model = timm.create_model(ARCHITECTURE, pretrained=False, num_classes=len(CLASSES))
    return model.state_dict()


def v2_card(config: PreprocessConfig, *, use_metadata: bool, tta: int = 0) -> dict:
    """A v2 card as ml.export_v2 writes it, with made-up calibration and decision weights."""
    prior = [0.03, 0.05, 0.11, 0.01, 0.11, 0.67, 0.02]
    return {
        "network": "lesionnet",
        "architecture": "tf_efficientnet_lite0",
        "input_size": config.input_size,
        "preprocessing": config.as_dict(),
        "classes": list(CLASSES),
        "metadata": {"used": use_metadata},
        "temperature": 1.3,
        "calibration_bias": [0.1, -0.2, 0.0, 0.3, 0.0, -0.1, -0.1],
        "decision": {"alpha": 1.0, "class_weights": [min(prior) / p for p in prior]},
        "thresholds": {"moderate": 0.1, "high": 0.3},
        "tta": tta,
    }


def random_lesionnet(use_metadata: bool, seed: int = 0) -> LesionNet:
    """A v2 network with random weights (no ImageNet): the serving contract, not accuracy."""
    torch.manual_seed(seed)
    model = LesionNet(use_metadata=use_metadata)
    # A random head large enough that metadata visibly moves the output.
    torch.nn.init.normal_(model.classifier.weight, std=0.5)
    return model.eval()


def install_v2_model(root: Path, version: str = "test-lesionnet-v2") -> Path:
    """A random-weight v2 model with a metadata branch under root, named in CURRENT."""
    config = PreprocessConfig(input_size=128)
    model = random_lesionnet(True)
    return write_model_dir(root, version, model.state_dict(), v2_card(config, use_metadata=True))


@pytest.fixture(scope="session")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models root holding one random-weight model, named in CURRENT."""
    root = tmp_path_factory.mktemp("models")
    write_model_dir(root, TEST_VERSION, random_state_dict(), make_card(PreprocessConfig()))
    return root


@pytest.fixture(scope="session")
def tiny_classifier(models_root: Path) -> Classifier:
    return Classifier.load(models_root / TEST_VERSION, threads=1)


@pytest.fixture(scope="session")
def shipped_classifier() -> Classifier:
    if not (MODELS_ROOT / CURRENT_FILE).is_file():
        pytest.skip(f"no model exported yet ({MODELS_ROOT / CURRENT_FILE} missing)")
    return Classifier.load_current(threads=1)


def lesion_like_image(size: tuple[int, int] = (200, 150), seed: int = 0) -> Image.Image:
    """A brown blob on skin-coloured noise: enough structure for preprocessing and Grad-CAM."""
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    blob = np.exp(
        -(
            ((xx - width * 0.55) / (width * 0.2)) ** 2
            + ((yy - height * 0.45) / (height * 0.25)) ** 2
        )
    )
    skin = np.array([225, 180, 160], dtype=np.float64)
    lesion = np.array([90, 50, 35], dtype=np.float64)
    pixels = skin * (1 - blob[..., None]) + lesion * blob[..., None]
    pixels += rng.normal(0, 8, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
