"""The image gate of the shipped model refuses what is not dermoscopy and passes what is.

The gate's thresholds were fitted on dermoscopic images only (ml.gate fit); the
non-dermoscopic set (ml.nonderm) chose nothing, so what these tests see is what the model
card reports.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from ml.gate import GATE_FILE, Gate, GateNotFitted, main
from ml.nonderm import non_dermoscopic_images

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@pytest.fixture(scope="module")
def gate(shipped_classifier) -> Gate:
    try:
        return Gate.load(shipped_classifier)
    except GateNotFitted as error:
        pytest.skip(str(error))


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.jpg")), ids=lambda p: p.stem)
def test_shipped_dermoscopic_samples_are_accepted(gate, path):
    with Image.open(path) as image:
        verdict = gate.check(image)

    assert verdict.accepted, verdict


def test_every_kind_of_non_dermoscopic_image_is_refused(gate):
    refused: dict[str, list[bool]] = {}
    for _name, kind, image in non_dermoscopic_images():
        refused.setdefault(kind, []).append(not gate.check(image).accepted)

    for kind, outcomes in refused.items():
        assert sum(outcomes) / len(outcomes) >= 0.5, f"{kind}: {outcomes}"
    total = [o for outcomes in refused.values() for o in outcomes]
    assert sum(total) / len(total) >= 0.95


def test_the_cat_and_the_coffee_cup_get_advice_in_plain_words(gate):
    images = {name: image for name, _kind, image in non_dermoscopic_images()}

    for name in ("cat", "coffee"):
        verdict = gate.check(images[name])
        assert not verdict.accepted
        assert "dermatoscope" in verdict.message or "Retake" in verdict.message


def test_the_command_checks_a_folder_as_the_worker_does(gate, tmp_path, capsys):
    shutil.copy(SAMPLES / "mel_ISIC_0024481.jpg", tmp_path / "lesion.jpg")
    images = {name: image for name, _kind, image in non_dermoscopic_images()}
    images["cat"].save(tmp_path / "cat.png")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")

    code = main(["--images", str(tmp_path), "--model-dir", str(gate.classifier.model_dir)])

    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (result["accepted"], result["rejected"]) == (1, 2)
    verdicts = {row["image"]: row for row in result["images"]}
    assert verdicts["lesion.jpg"]["verdict"] == "accepted"
    assert verdicts["cat.png"]["reason"] == "not_dermoscopic"
    assert verdicts["broken.jpg"]["reason"] == "unreadable"


def test_a_model_without_a_gate_says_how_to_fit_one(shipped_classifier, tmp_path, capsys):
    bare = tmp_path / "bare"
    shutil.copytree(shipped_classifier.model_dir, bare, ignore=shutil.ignore_patterns("gate.*"))
    assert not (bare / GATE_FILE).exists()

    code = main(["--images", str(SAMPLES), "--model-dir", str(bare)])

    assert code == 2
    assert "no image gate" in capsys.readouterr().err
