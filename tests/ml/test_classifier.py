"""The worker's contract (ml.inference): loading, predictions, heat maps, missing models."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from ml.classes import CLASSES
from ml.data import read_split
from ml.export import write_model_dir
from ml.inference import (
    CURRENT_FILE,
    Classifier,
    ClassifierNotInstalled,
    Prediction,
    forward_logits,
    tta_views,
)
from ml.metrics import balanced_accuracy
from tests.ml.conftest import TEST_VERSION, lesion_like_image


def test_empty_model_dir_raises_classifier_not_installed(tmp_path):
    with pytest.raises(ClassifierNotInstalled, match="no classifier installed") as caught:
        Classifier.load(tmp_path)

    assert str(tmp_path) in str(caught.value)


def test_missing_current_file_raises_classifier_not_installed(tmp_path):
    with pytest.raises(ClassifierNotInstalled, match=str(tmp_path / CURRENT_FILE)):
        Classifier.load_current(tmp_path)


def test_weights_from_another_export_are_refused(models_root, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(models_root / TEST_VERSION, copy)
    with open(copy / "weights.pt", "ab") as handle:
        handle.write(b"\0")

    with pytest.raises(ValueError, match="sha256"):
        Classifier.load(copy)


def test_load_current_reads_the_version_named_in_current(models_root):
    classifier = Classifier.load_current(models_root, threads=1)

    assert classifier.version == TEST_VERSION
    assert classifier.card["version"] == TEST_VERSION


def test_prediction_follows_the_contract(tiny_classifier):
    prediction = tiny_classifier.predict(lesion_like_image((640, 480)))

    assert isinstance(prediction, Prediction)
    assert list(prediction.probabilities) == list(CLASSES)
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-9)
    assert prediction.top_class == max(prediction.probabilities, key=prediction.probabilities.get)
    assert prediction.melanoma_probability == prediction.probabilities["mel"]
    assert prediction.risk_tier == tiny_classifier.thresholds.tier(prediction.melanoma_probability)
    assert prediction.model_version == TEST_VERSION
    assert set(prediction.timings_ms) == {"preprocess", "inference"}
    json.dumps(prediction.probabilities)  # plain floats, storable as they are


def test_batch_predictions_equal_single_predictions(tiny_classifier):
    images = [lesion_like_image(size, seed) for seed, size in enumerate([(200, 150), (90, 120)])]

    batch = tiny_classifier.predict_batch(images)
    single = [tiny_classifier.predict(image) for image in images]

    for a, b in zip(batch, single, strict=True):
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-5)


def test_predict_rejects_what_is_not_an_image(tiny_classifier):
    with pytest.raises(TypeError, match="PIL"):
        tiny_classifier.predict(np.zeros((150, 200, 3), dtype=np.uint8))


def test_heatmap_has_the_image_size_and_shows_something(tiny_classifier):
    image = lesion_like_image((300, 225))

    heatmap = tiny_classifier.heatmap(image, "mel")

    assert heatmap.mode == "RGB"
    assert heatmap.size == image.size
    pixels = np.asarray(heatmap, dtype=np.int16)
    assert pixels.std() > 0
    assert np.abs(pixels - np.asarray(image, dtype=np.int16)).max() > 20  # an overlay, not a copy


def test_heatmap_rejects_an_unknown_class(tiny_classifier):
    with pytest.raises(ValueError, match="unknown class"):
        tiny_classifier.heatmap(lesion_like_image(), "melanoma")


def _validation_sample(data_dir, per_class: int = 6):
    chosen = []
    for code in CLASSES:
        records = sorted((r for r in read_split()["val"] if r.dx == code), key=lambda r: r.image_id)
        chosen += records[:per_class]
    images = []
    for record in chosen:
        with Image.open(data_dir / "images" / f"{record.image_id}.jpg") as image:
            image.load()
            images.append(image)
    return images, np.array([CLASSES.index(r.dx) for r in chosen])


def test_shipped_model_beats_chance_on_validation_images(shipped_classifier, data_dir):
    images, labels = _validation_sample(data_dir)

    predictions = shipped_classifier.predict_batch(images)

    predicted = np.array([CLASSES.index(p.top_class) for p in predictions])
    # Chance is 1/7 = 0.14 on a class-balanced sample.
    assert balanced_accuracy(labels, predicted, len(CLASSES)) > 0.35


def test_shipped_model_heatmap_of_a_lesion(shipped_classifier, data_dir):
    images, _ = _validation_sample(data_dir, per_class=1)
    image = images[CLASSES.index("mel")]

    heatmap = shipped_classifier.heatmap(image, "mel")

    assert heatmap.size == image.size
    assert np.asarray(heatmap).std() > 0


def test_tta_logits_are_the_mean_of_each_view_run_alone(tiny_classifier):
    model = tiny_classifier.model
    batch = torch.stack([tiny_classifier.preprocess(lesion_like_image(seed=s)) for s in range(9)])

    with torch.inference_mode():
        together = forward_logits(model, batch, tta=True)
        alone = torch.stack([forward_logits(model, view) for view in tta_views(batch)]).mean(0)

    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-4)


def test_tta_is_applied_when_the_card_says_so(models_root, tmp_path):
    card = json.loads((models_root / TEST_VERSION / "card.json").read_text())
    weights = torch.load(models_root / TEST_VERSION / "weights.pt", weights_only=True)
    write_model_dir(tmp_path, "with-tta", weights, card | {"tta": True})
    plain = Classifier.load(models_root / TEST_VERSION, threads=1)
    with_tta = Classifier.load(tmp_path / "with-tta", threads=1)
    image = lesion_like_image()

    with torch.inference_mode():
        expected = forward_logits(plain.model, plain.preprocess(image)[None], tta=True)

    assert with_tta.tta and not plain.tta
    assert with_tta.predict(image).probabilities["mel"] == pytest.approx(
        float(torch.softmax(expected / plain.temperature, 1)[0, 4]), abs=1e-5
    )
