"""Serving by ONNX Runtime without torch (ml.onnx_serving): the same predictions, heatmaps,
gate scores and embedding features as the PyTorch reference, from numpy and Pillow alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ml import metadata as meta
from ml.embedding import Embedder, image_features, pooled_features
from ml.export import write_model_dir
from ml.gate import FEATURE_CONFIG, Gate, ImageNetFeatures
from ml.heatmap import cam_to_image, normalised_cam, resize_bilinear
from ml.inference import Classifier
from ml.metadata import N_FEATURES
from ml.model import LesionEnsemble
from ml.onnx_serving import OnnxClassifier
from ml.preprocessing import PreprocessConfig, to_model_input
from ml.runtimes import OnnxRunner, export_onnx, file_sha256, numpy_input
from tests.ml.conftest import lesion_like_image, random_lesionnet, v2_card

CONFIG = PreprocessConfig(input_size=128)
REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / "samples").glob("*.jpg"))
SHIPPED = REPO / "ml" / "models" / "ham10000-lite0-v2"


def _shipped_onnx_dir() -> Path:
    """The shipped v2 with its ONNX forms exported (model.onnx with its `features` output,
    gate_features.onnx); skips cleanly without them."""
    if not (SHIPPED / "model.onnx").is_file() or not (SHIPPED / "gate.json").is_file():
        pytest.skip(f"{SHIPPED} ships no model.onnx or no image gate")
    gate = json.loads((SHIPPED / "gate.json").read_text())
    if "features" not in OnnxRunner(SHIPPED / "model.onnx").output_names:
        pytest.skip("the shipped model.onnx has no features output: run python -m ml.runtimes")
    if "features_onnx" not in gate:
        pytest.skip("no gate_features.onnx shipped: run python -m ml.gate export-onnx")
    return SHIPPED


# --- the pieces ----------------------------------------------------------------------------


def test_numpy_metadata_vector_equals_the_torch_one():
    for record in (None, meta.parse(54, "female", "back"), meta.parse(None, "male", "sole")):
        np.testing.assert_array_equal(meta.encode_array(record), meta.encode(record).numpy())


@pytest.mark.parametrize("size", [(1000, 800), (37, 41), (160, 160), (3, 2), (913, 1351)])
def test_numpy_bilinear_resize_equals_torch_interpolate(size):
    cam = np.random.default_rng(size[0]).random((5, 6)).astype(np.float32)
    expected = F.interpolate(
        torch.from_numpy(cam)[None, None], size=size, mode="bilinear", align_corners=False
    )[0, 0].numpy()

    np.testing.assert_allclose(resize_bilinear(cam, size), expected, atol=1e-6)


def test_numpy_preprocessing_equals_the_training_path_on_the_shipped_samples():
    """The card's own preprocessing (160 px) on real dermoscopic JPEGs of HAM10000's size."""
    if not SAMPLES:
        pytest.skip("no samples/ images")
    card_config = PreprocessConfig(input_size=160)
    for path in SAMPLES:
        with Image.open(path) as image:
            np.testing.assert_allclose(
                numpy_input(image, card_config),
                to_model_input(image, card_config).numpy(),
                atol=1e-6,
            )


def test_the_features_output_equals_pooled_features_for_a_network_and_an_ensemble(tmp_path):
    images = torch.stack([to_model_input(lesion_like_image(seed=s), CONFIG) for s in range(3)])
    vectors = torch.stack([meta.encode(meta.parse(40 + s, "male", "face")) for s in range(3)])
    single = random_lesionnet(True, seed=1)
    ensemble = LesionEnsemble([random_lesionnet(True, seed=2), random_lesionnet(False, seed=3)])
    for name, network in (("one", single), ("two", ensemble.eval())):
        path = export_onnx(network, CONFIG.input_size, N_FEATURES, tmp_path / f"{name}.onnx")
        out = OnnxRunner(path).outputs(images.numpy(), vectors.numpy(), ("logits", "features"))
        with torch.inference_mode():
            np.testing.assert_allclose(
                out["features"], pooled_features(network, images).numpy(), atol=1e-4
            )
            np.testing.assert_allclose(out["logits"], network(images, vectors).numpy(), atol=1e-4)
    assert out["features"].shape == (3, 2 * 1280)


def test_an_onnx_file_without_an_output_says_which_and_what_to_do(tmp_path):
    path = export_onnx(random_lesionnet(False), CONFIG.input_size, N_FEATURES, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"no output \['embedding'\].*python -m ml.runtimes"):
        OnnxRunner(path).outputs(np.zeros((1, 3, 128, 128)), np.zeros((1, 12)), ("embedding",))


# --- a whole model directory -----------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_model_dir(tmp_path_factory) -> Path:
    """A random LesionNet exported as ml.export and ml.runtimes write it, onnx-fp32 servable."""
    folder = tmp_path_factory.mktemp("served")
    network = random_lesionnet(True, seed=5)
    card = v2_card(CONFIG, use_metadata=True, tta=4)
    card["triage"] = {"thresholds": {"moderate": 0.1, "high": 0.3, "nmsc": 0.2}}
    model_dir = write_model_dir(folder, "v", network.state_dict(), card, set_current=False)
    export_onnx(network, CONFIG.input_size, N_FEATURES, model_dir / "model.onnx")
    card = json.loads((model_dir / "card.json").read_text())
    card["runtimes"] = {
        "onnx-fp32": {
            "file": "model.onnx",
            "sha256": file_sha256(model_dir / "model.onnx"),
            "servable": True,
            "parity": {"top1_agreement": 1.0},
        }
    }
    (model_dir / "card.json").write_text(json.dumps(card))
    return model_dir


def test_onnx_classifier_predicts_what_the_pytorch_classifier_predicts(onnx_model_dir):
    images = [lesion_like_image((220 + 13 * s, 160), seed=s) for s in range(5)]
    records = [meta.parse(30 + 10 * s, "female", "back") if s % 2 else None for s in range(5)]

    onnx = OnnxClassifier.load(onnx_model_dir, runtime="onnx-fp32", threads=1)
    reference = Classifier.load(onnx_model_dir, runtime="torch", threads=1)
    got = onnx.predict_batch(images, metadata=records)
    expected = reference.predict_batch(images, metadata=records)

    assert onnx.runtime == "onnx-fp32" and onnx.tta == 4
    for a, b in zip(got, expected, strict=True):
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-5)
        assert (a.top_class, a.risk_tier, a.metadata_used) == (
            b.top_class,
            b.risk_tier,
            b.metadata_used,
        )
        assert a.triage == b.triage


def test_onnx_heatmap_is_grad_cams_drawn_by_the_same_code(onnx_model_dir):
    image = lesion_like_image((300, 220), seed=4)
    onnx = OnnxClassifier.load(onnx_model_dir, runtime="onnx-fp32", threads=1)
    reference = Classifier.load(onnx_model_dir, runtime="torch", threads=1)

    for target in ("mel", "nv"):
        np.testing.assert_allclose(
            np.asarray(onnx.heatmap(image, target), dtype=float),
            np.asarray(reference.heatmap(image, target), dtype=float),
            atol=2,
        )


def test_onnx_classifier_refuses_a_torch_runtime_and_a_swapped_file(onnx_model_dir, tmp_path):
    with pytest.raises(ValueError, match="not an ONNX runtime"):
        OnnxClassifier.load(onnx_model_dir, runtime="torch")
    copy = tmp_path / "v"
    copy.mkdir()
    for entry in onnx_model_dir.iterdir():
        (copy / entry.name).write_bytes(entry.read_bytes())
    (copy / "model.onnx").write_bytes((copy / "model.onnx").read_bytes() + b"x")
    with pytest.raises(ValueError, match="not the file the card measured"):
        OnnxClassifier.load(copy, runtime="onnx-fp32")


# --- the shipped model (b) --------------------------------------------------------------------


def test_one_explained_pass_gives_the_predictions_heatmaps_and_features_of_separate_passes(
    onnx_model_dir, monkeypatch
):
    """The worker's single run of the graph (four TTA views here, with metadata) gives what
    predict_batch, heatmap and features give by their own runs: the plain view's maps and
    features, the views' averaged logits."""
    images = [lesion_like_image((220 + 13 * s, 160 + 7 * s), seed=s) for s in range(4)]
    records = [meta.parse(40 + s, "male", "back") if s % 2 else None for s in range(4)]
    onnx = OnnxClassifier.load(onnx_model_dir, runtime="onnx-fp32", threads=1)
    expected = onnx.predict_batch(images, metadata=records)
    expected_features = onnx.features(images)
    runs = []
    real = onnx.runner.outputs
    monkeypatch.setattr(onnx.runner, "outputs", lambda *a, **k: runs.append(1) or real(*a, **k))

    explained = onnx.predict_explained(images, metadata=records)

    assert len(runs) == 1
    for image, seen, want, features in zip(
        images, explained, expected, expected_features, strict=True
    ):
        assert seen.prediction.probabilities == pytest.approx(want.probabilities, abs=1e-6)
        assert (seen.prediction.top_class, seen.prediction.triage) == (
            want.top_class,
            want.triage,
        )
        assert seen.prediction.metadata_used == want.metadata_used
        np.testing.assert_allclose(seen.features, features, rtol=1e-4, atol=1e-5)
        monkeypatch.setattr(onnx.runner, "outputs", real)
        for target in ("mel", want.top_class):
            np.testing.assert_allclose(
                np.asarray(onnx.heatmap(image, target, cams=seen.cams), dtype=float),
                np.asarray(onnx.heatmap(image, target), dtype=float),
                atol=1,
            )


def test_maps_of_a_larger_working_copy_are_not_drawn_on_a_smaller_one(onnx_model_dir):
    """A heatmap drawn on a working copy smaller than the predicted image is computed again
    on that copy's pixels, never stretched from the other image's maps."""
    image = lesion_like_image((400, 300), seed=9)
    onnx = OnnxClassifier.load(onnx_model_dir, runtime="onnx-fp32", threads=1)
    wrong = np.zeros_like(onnx.predict_explained([image])[0].cams)

    np.testing.assert_array_equal(
        np.asarray(onnx.heatmap(image, "mel", max_pixels=200 * 150, cams=wrong)),
        np.asarray(onnx.heatmap(image, "mel", max_pixels=200 * 150)),
    )


@pytest.fixture(scope="module")
def shipped_pair():
    model_dir = _shipped_onnx_dir()
    if not SAMPLES:
        pytest.skip("no samples/ images")
    onnx = OnnxClassifier.load(model_dir, runtime="onnx-fp32", threads=2)
    reference = Classifier.load(model_dir, runtime="torch", threads=2)
    images = []
    for path in SAMPLES:
        with Image.open(path) as image:
            images.append(image.convert("RGB"))
    return onnx, reference, images


def test_shipped_gate_scores_by_onnx_equal_the_pytorch_ones(shipped_pair):
    onnx, reference, images = shipped_pair
    onnx_gate, torch_gate = Gate.load(onnx), Gate.load(reference)

    assert torch_gate.features is ImageNetFeatures
    assert onnx_gate.features is not ImageNetFeatures
    expected, got = torch_gate.ood_scores(images), onnx_gate.ood_scores(images)
    np.testing.assert_allclose(got, expected, rtol=1e-3)
    verdicts = [(v.accepted, v.reason) for v in map(onnx_gate.check, images)]
    assert verdicts == [(v.accepted, v.reason) for v in map(torch_gate.check, images)]
    assert FEATURE_CONFIG.input_size == 192


def test_shipped_embedding_features_by_onnx_equal_the_pytorch_ones(shipped_pair):
    onnx, reference, images = shipped_pair

    np.testing.assert_allclose(
        image_features(onnx, images), image_features(reference, images), atol=1e-3, rtol=1e-4
    )
    onnx_vectors = np.stack([Embedder.load(onnx).of(i) for i in images])
    torch_vectors = np.stack([Embedder.load(reference).of(i) for i in images])
    cosine = (onnx_vectors * torch_vectors).sum(axis=1)
    assert cosine.min() > 0.99999
    assert Embedder.load(onnx).space == Embedder.load(reference).space


def test_shipped_heatmap_from_cam_matches_grad_cam(shipped_pair):
    onnx, reference, images = shipped_pair
    for image in images[:4]:
        for target in ("mel", onnx.predict(image).top_class):
            got = np.asarray(onnx.heatmap(image, target), dtype=float)
            expected = np.asarray(reference.heatmap(image, target), dtype=float)
            assert np.abs(got - expected).max() <= 2


def test_shipped_predictions_by_onnx_equal_the_pytorch_ones(shipped_pair):
    onnx, reference, images = shipped_pair
    for a, b in zip(onnx.predict_batch(images), reference.predict_batch(images), strict=True):
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-4)
        assert (a.top_class, a.triage) == (b.top_class, b.triage)


def test_cam_to_image_lays_the_map_on_the_crop_box_only():
    cam = normalised_cam(np.stack([np.ones((5, 5)), np.zeros((5, 5))]), 0)
    full = cam_to_image(cam, (300, 200), CONFIG)

    assert full.shape == (200, 300)
    assert full[:, 0].max() == 0 and full[100, 150] == pytest.approx(1.0)


def test_serving_modules_import_without_torch():
    code = (
        "import sys, ml.onnx_serving, ml.gate, ml.embedding, ml.verify, ml.runtime_choice; "
        "print(sorted(m for m in ('torch', 'torchvision', 'timm', 'sklearn') if m in sys.modules))"
    )
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
