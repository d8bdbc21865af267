"""Accelerated runtimes (ml.runtimes): the same numbers as the PyTorch path they replace."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ml import metadata as meta
from ml.export import write_model_dir
from ml.gradcam import grad_cam
from ml.inference import Classifier
from ml.metadata import N_FEATURES
from ml.preprocessing import PreprocessConfig, to_model_input
from ml.runtimes import (
    OnnxRunner,
    export_onnx,
    file_sha256,
    normalised_cam,
    numpy_input,
    parity,
    passes,
    quantize_int8,
)
from tests.ml.conftest import lesion_like_image, random_lesionnet, v2_card

CONFIG = PreprocessConfig(input_size=128)


@pytest.mark.parametrize(
    ("size", "mode"),
    [
        ((200, 150), "RGB"),
        ((150, 200), "RGB"),
        ((1024, 768), "RGB"),
        ((300, 300), "L"),
        ((201, 149), "RGBA"),
        ((128, 146), "RGB"),
    ],
)
def test_numpy_preprocessing_matches_the_torch_path(size, mode):
    image = lesion_like_image(size, seed=size[0]).convert(mode)

    expected = to_model_input(image, CONFIG).numpy()
    actual = numpy_input(image, CONFIG)

    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=1e-6)


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    model = random_lesionnet(True, seed=3)
    path = export_onnx(model, CONFIG.input_size, N_FEATURES, folder / "model.onnx")
    return model, path, folder


def _batch(n: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.stack([to_model_input(lesion_like_image(seed=s), CONFIG) for s in range(n)])
    records = [meta.parse(30 + 20 * s, "female", "back") if s % 2 else None for s in range(n)]
    return images, torch.stack([meta.encode(r) for r in records])


def test_onnx_fp32_logits_equal_the_pytorch_network(onnx_model):
    model, path, _ = onnx_model
    images, vectors = _batch()

    with torch.inference_mode():
        expected = model(images, vectors).numpy()
    logits, _ = OnnxRunner(path).run(images.numpy(), vectors.numpy())

    np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_class_activation_map_equals_grad_cam(onnx_model):
    """For global pooling + a linear head, CAM needs no autograd and is Grad-CAM exactly."""
    model, path, _ = onnx_model
    images, vectors = _batch(1)
    _, cams = OnnxRunner(path).run(images.numpy(), vectors.numpy())

    for index in (0, 4):  # mel, nv: maps that differ
        expected = grad_cam(model, images, index, model.bn2)
        np.testing.assert_allclose(normalised_cam(cams[0], index), expected, atol=1e-4)


def _install(folder, model, path, runtime: str = "onnx-fp32", servable: bool = True):
    """An exported model directory whose card names `runtime` with the ONNX file beside it."""
    model_dir = write_model_dir(
        folder, "v", model.state_dict(), v2_card(CONFIG, use_metadata=True), set_current=False
    )
    (model_dir / "model.onnx").write_bytes(path.read_bytes())
    card = json.loads((model_dir / "card.json").read_text())
    card["runtime"] = runtime
    card["runtimes"] = {
        runtime: {
            "file": "model.onnx",
            "sha256": file_sha256(model_dir / "model.onnx"),
            "servable": servable,
            "parity": {"top1_agreement": 0.9},
        }
    }
    (model_dir / "card.json").write_text(json.dumps(card))
    return model_dir


def test_classifier_serves_the_onnx_form_its_card_names(onnx_model, tmp_path):
    model, path, _ = onnx_model
    model_dir = _install(tmp_path, model, path)
    image, record = lesion_like_image(seed=9), meta.parse(70, "male", "face")

    onnx = Classifier.load(model_dir, threads=1)
    torch_served = Classifier.load(model_dir, threads=1, runtime="torch")

    assert onnx.runtime == "onnx-fp32" and torch_served.runtime == "torch"
    a, b = onnx.predict(image, record), torch_served.predict(image, record)
    assert a.probabilities == pytest.approx(b.probabilities, abs=1e-5)
    np.testing.assert_allclose(
        np.asarray(onnx.heatmap(image, "mel"), dtype=float),
        np.asarray(torch_served.heatmap(image, "mel"), dtype=float),
        atol=2,
    )


def test_a_runtime_that_failed_parity_or_was_swapped_is_refused(onnx_model, tmp_path):
    model, path, _ = onnx_model
    _install(tmp_path, model, path, servable=False)
    with pytest.raises(ValueError, match="failed its parity check"):
        Classifier.load(tmp_path / "v", threads=1)

    model_dir = _install(tmp_path, model, path)
    (model_dir / "model.onnx").write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(ValueError, match="not the file the card measured"):
        Classifier.load(model_dir, threads=1)


def test_int8_quantisation_runs_and_stays_close_on_its_calibration_images(onnx_model, tmp_path):
    _, path, _ = onnx_model
    images, vectors = _batch(8)
    int8 = quantize_int8(path, tmp_path / "model.int8.onnx", images.numpy(), vectors.numpy())

    full, _ = OnnxRunner(path).run(images.numpy(), vectors.numpy())
    quant, cams = OnnxRunner(int8).run(images.numpy(), vectors.numpy())

    assert int8.stat().st_size < 0.5 * path.stat().st_size
    assert cams.shape[:2] == (8, 7)
    assert np.corrcoef(full.ravel(), quant.ravel())[0, 1] > 0.95


def test_parity_gate_needs_agreement_and_no_metric_drop():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(7), 20)
    reference = rng.dirichlet(np.ones(7), size=len(labels))
    reference[np.arange(len(labels)), labels] += 1.0
    reference /= reference.sum(1, keepdims=True)
    same = parity(labels, reference, reference.copy(), lambda p: p.argmax(1))
    shuffled = parity(labels, reference, rng.permutation(reference), lambda p: p.argmax(1))

    assert passes(same)
    assert same["top1_agreement"] == 1.0
    assert not passes(shuffled)
