"""Accelerated runtimes (ml.runtimes): the same numbers as the PyTorch path they replace."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from ml import metadata as meta
from ml.export import write_model_dir
from ml.gradcam import grad_cam
from ml.inference import CURRENT_FILE, MODELS_ROOT, Classifier
from ml.metadata import N_FEATURES
from ml.preprocessing import PreprocessConfig, to_model_input
from ml.runtimes import (
    FLOAT_STAGES,
    RUNTIMES,
    OnnxRunner,
    export_onnx,
    file_sha256,
    in_stages,
    normalised_cam,
    numpy_input,
    parity,
    passes,
    quantize_int8,
    shape_arithmetic,
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
    int8 = quantize_int8(
        path, tmp_path / "model.int8.onnx", images.numpy(), vectors.numpy(), float_stages=()
    )

    full, full_cams = OnnxRunner(path).run(images.numpy(), vectors.numpy())
    quant, cams = OnnxRunner(int8).run(images.numpy(), vectors.numpy())

    assert int8.stat().st_size < 0.5 * path.stat().st_size
    # Quantising the "SAME" padding arithmetic once dropped paddings and shrank the last
    # feature map (5x5 -> 4x4 at 160 px), which cost 12% of decisions; the map keeps its size.
    assert cams.shape == full_cams.shape
    assert np.corrcoef(full.ravel(), quant.ravel())[0, 1] > 0.95


def test_padding_arithmetic_is_left_in_float(onnx_model):
    _, path, _ = onnx_model
    graph = onnx.load(str(path)).graph
    kinds = {node.name: node.op_type for node in graph.node}

    kept = shape_arithmetic(path)

    assert kept, "timm's tf_ EfficientNet computes its paddings at run time"
    assert {kinds[name] for name in kept} >= {"Shape", "Ceil", "Mul", "Sub"}
    assert not {kinds[name] for name in kept} & {"Conv", "Gemm", "Einsum", "GlobalAveragePool"}


def test_the_stages_kept_in_float_are_found_by_name(onnx_model):
    _, path, _ = onnx_model
    convolutions = {n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"}

    kept = set(in_stages(path, FLOAT_STAGES)) & convolutions

    assert any("conv_stem" in name for name in kept)
    assert any("blocks.4/" in name for name in kept)
    assert not any("blocks.5/" in name or "conv_head" in name for name in kept)
    assert in_stages(path, ()) == []


def test_the_runner_reads_outputs_by_name_when_the_graph_has_more(onnx_model, tmp_path):
    """Another part of the serving code adds outputs (pooled features): an extra output,
    placed first, must not shift logits and CAMs."""
    _, path, _ = onnx_model
    images, vectors = _batch(2)
    model = onnx.load(str(path))
    pooled = next(n for n in model.graph.node if n.op_type == "GlobalAveragePool").output[0]
    model.graph.output.insert(0, onnx.helper.make_tensor_value_info(pooled, 1, None))
    extended = tmp_path / "extended.onnx"
    onnx.save(model, str(extended))

    expected = OnnxRunner(path).run(images.numpy(), vectors.numpy())
    actual = OnnxRunner(extended).run(images.numpy(), vectors.numpy())
    logits = OnnxRunner(extended).logits(images.numpy(), vectors.numpy())

    assert [o.name for o in OnnxRunner(extended).session.get_outputs()][0] == pooled
    np.testing.assert_allclose(actual[0], expected[0], atol=1e-6)
    np.testing.assert_allclose(actual[1], expected[1], atol=1e-6)
    np.testing.assert_allclose(logits, expected[0], atol=1e-6)


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


def test_an_unknown_runtime_is_refused_by_name(onnx_model, tmp_path):
    model, path, _ = onnx_model
    model_dir = _install(tmp_path, model, path)
    with pytest.raises(ValueError, match="unknown runtime 'onnx-fp16'"):
        Classifier.load(model_dir, threads=1, runtime="onnx-fp16")


@pytest.mark.slow
def test_pytorch_int8_program_is_saved_loaded_and_close_to_fp32(tmp_path):
    """PT2E: export, quantise with the x86 inductor quantizer, save, load, compile."""
    from ml.torch_runtimes import TorchRunner, quantize_pt2e, save_program

    model = random_lesionnet(True, seed=5).eval()
    images, vectors = _batch(4)
    program = quantize_pt2e(model, CONFIG.input_size, N_FEATURES, images.numpy(), vectors.numpy())
    path = save_program(program, tmp_path / "model.int8.pt2")

    quant = TorchRunner.int8(path).logits(images.numpy(), vectors.numpy())
    with torch.inference_mode():
        full = model(images, vectors).numpy()

    assert quant.shape == full.shape
    assert np.corrcoef(full.ravel(), quant.ravel())[0, 1] > 0.95


# --- The shipped model: every form its card calls servable decides as PyTorch does. --------

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SHIPPED = MODELS_ROOT / (MODELS_ROOT / CURRENT_FILE).read_text().strip()
# Largest difference in any calibrated probability allowed on a sample, against torch eager:
# fp32 forms compute the same function up to float rounding; the int8 forms moved some
# validation image's probabilities by up to 0.18 (onnx-int8) and 0.09 (torch-int8), card
# `max_abs_probability_difference`; the decision must not move at all.
PROBABILITY_TOLERANCE = {
    "torch-compile": 1e-3,
    "onnx-fp32": 1e-4,
    "torch-int8": 0.2,
    "onnx-int8": 0.2,
}


def _shipped_card() -> dict:
    return json.loads((SHIPPED / "card.json").read_text())


@pytest.fixture(scope="module")
def samples():
    with open(SAMPLES / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    images = []
    for row in rows:
        with Image.open(SAMPLES / row["file"]) as image:
            images.append(image.convert("RGB"))
    return images, [meta.parse(site=row["localization"]) for row in rows]


@pytest.fixture(scope="module")
def torch_predictions(samples):
    images, records = samples
    return Classifier.load(SHIPPED, threads=1, runtime="torch").predict_batch(
        images, metadata=records
    )


@pytest.mark.parametrize(
    "runtime",
    [
        pytest.param(r, marks=pytest.mark.slow) if r.startswith("torch-") else r
        for r in RUNTIMES[1:]
    ],
)
def test_each_servable_runtime_decides_as_pytorch_on_the_shipped_samples(
    runtime, samples, torch_predictions
):
    entry = _shipped_card().get("runtimes", {}).get(runtime)
    if not entry or not entry["servable"]:
        pytest.skip(f"the shipped card does not call {runtime} servable")
    images, records = samples

    served = Classifier.load(SHIPPED, threads=1, runtime=runtime)
    predictions = served.predict_batch(images, metadata=records)

    assert served.runtime == runtime
    assert [p.top_class for p in predictions] == [p.top_class for p in torch_predictions]
    tolerance = PROBABILITY_TOLERANCE[runtime]
    for ours, reference in zip(predictions, torch_predictions, strict=True):
        assert ours.probabilities == pytest.approx(reference.probabilities, abs=tolerance)


def test_the_shipped_card_calls_a_runtime_servable_only_when_its_figures_pass():
    card = _shipped_card()
    runtimes = card.get("runtimes", {})

    assert set(runtimes) <= set(RUNTIMES[1:])
    for name, entry in runtimes.items():
        assert entry["servable"] == passes(entry["parity"]), name
        if "file" in entry:
            assert file_sha256(SHIPPED / entry["file"]) == entry["sha256"], name
    served = card.get("runtime", "torch")
    assert served == "torch" or runtimes[served]["servable"]
