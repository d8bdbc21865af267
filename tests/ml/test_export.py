"""Export writes a model directory the worker can load, and re-exporting overwrites it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ml.calibration import softmax
from ml.classes import CLASSES, MELANOMA_INDEX
from ml.data import Record
from ml.export import TTA_MIN_GAIN, build_card, training_command, validation_logits, write_model_dir
from ml.inference import Classifier
from ml.preprocessing import PreprocessConfig
from tests.ml.conftest import lesion_like_image, make_card, random_state_dict


def test_training_command_is_rebuilt_from_checkpoint_args():
    args = {
        "data": "/d",
        "out": "runs/lite0",
        "epochs": "14",
        "resume": "False",
        "time_budget_min": "95",
    }

    command = training_command(args)

    assert (
        command == "python -m ml.train --data /d --out runs/lite0 --epochs 14 --time-budget-min 95"
    )


def test_reexport_overwrites_the_version_and_points_current_at_it(tmp_path):
    config = PreprocessConfig()
    write_model_dir(tmp_path, "v1", random_state_dict(0), make_card(config))
    first = json.loads((tmp_path / "v1" / "card.json").read_text())

    write_model_dir(tmp_path, "v1", random_state_dict(1), make_card(config))
    second = json.loads((tmp_path / "v1" / "card.json").read_text())

    assert first["weights_sha256"] != second["weights_sha256"]
    assert (tmp_path / "CURRENT").read_text().strip() == "v1"
    assert Classifier.load_current(tmp_path, warm_up=False).card == second
    assert second["weights_mb"] <= 25
    assert sorted(p.name for p in (tmp_path / "v1").iterdir()) == ["card.json", "weights.pt"]


def test_no_current_leaves_the_served_version_alone(tmp_path):
    config = PreprocessConfig()
    write_model_dir(tmp_path, "v1", random_state_dict(0), make_card(config))

    write_model_dir(tmp_path, "v2", random_state_dict(0), make_card(config), set_current=False)

    assert (tmp_path / "CURRENT").read_text().strip() == "v1"


@pytest.mark.parametrize("version", ["", "../escape", ".hidden"])
def test_bad_version_names_are_refused(tmp_path, version):
    with pytest.raises(ValueError, match="version"):
        write_model_dir(tmp_path, version, {}, {})


def _synthetic_validation(tta_gain: float):
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(7), 60)
    plain = rng.normal(size=(len(labels), 7))
    plain[np.arange(len(labels)), labels] += 1.0
    tta = plain.copy()
    # Make a share of the plain mistakes right under TTA to control the gain.
    wrong = np.flatnonzero(plain.argmax(1) != labels)
    fixed = wrong[: int(tta_gain * len(labels))]
    tta[fixed, labels[fixed]] += 10.0
    return labels, plain, tta


@pytest.mark.parametrize("gain, expected", [(0.0, False), (3 * TTA_MIN_GAIN, True)])
def test_tta_is_used_only_when_it_clearly_helps(gain, expected):
    labels, plain, tta = _synthetic_validation(gain)
    checkpoint = {"split_sha256": "x", "epoch": 3, "args": {"out": "runs/lite0"}}

    card = build_card(
        checkpoint=checkpoint,
        config=PreprocessConfig(),
        labels=labels,
        plain_logits=plain,
        tta_logits=tta,
    )

    assert card["tta"] is expected
    assert card["tta_validation_balanced_accuracy"]["decision"].startswith("auto")
    numbers = card["tta_validation_balanced_accuracy"]
    assert numbers["with"] >= numbers["without"] if expected else True
    assert card["validation"]["melanoma"]["at_threshold"]["moderate"]["sensitivity"] >= 0.95
    assert card["thresholds"]["high"] >= card["thresholds"]["moderate"]
    assert card["validation"]["support"]["mel"] == int((labels == MELANOMA_INDEX).sum())
    json.dumps(card, allow_nan=False)


@pytest.mark.parametrize("forced", ["on", "off"])
def test_tta_can_be_forced_for_a_latency_budget(forced):
    labels, plain, tta = _synthetic_validation(0.0)
    checkpoint = {"split_sha256": "x", "epoch": 3, "args": {}}

    card = build_card(
        checkpoint=checkpoint,
        config=PreprocessConfig(),
        labels=labels,
        plain_logits=plain,
        tta_logits=tta,
        tta=forced,
    )

    assert card["tta"] is (forced == "on")
    assert "forced" in card["tta_validation_balanced_accuracy"]["decision"]


def test_export_sees_validation_images_exactly_as_the_worker_does(tmp_path, tiny_classifier):
    records = [Record(f"ISIC_{i:07d}", f"HAM_{i}", "mel") for i in range(3)]
    images = [lesion_like_image((200 + 40 * i, 150), seed=i) for i in range(3)]
    for record, image in zip(records, images, strict=True):
        image.save(tmp_path / f"{record.image_id}.jpg", quality=95)
    served = []
    for record in records:
        with Image.open(tmp_path / f"{record.image_id}.jpg") as image:
            served.append(tiny_classifier.predict(image))

    plain, _ = validation_logits(tiny_classifier.model, records, tmp_path, tiny_classifier.config)

    exported = softmax(plain, tiny_classifier.temperature)
    for row, prediction in zip(exported, served, strict=True):
        assert [prediction.probabilities[c] for c in CLASSES] == pytest.approx(row, abs=1e-5)
