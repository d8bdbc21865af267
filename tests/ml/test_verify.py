"""An exported model directory is checked against its card before the portal registers it:
each way a directory can disagree with its card is refused, in words that say what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ml.classes import CLASSES
from ml.export import write_model_dir
from ml.preprocessing import PreprocessConfig
from ml.verify import ModelDirectoryRefused, verify_model_dir
from tests.ml.conftest import make_card, random_state_dict


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("exported")
    return write_model_dir(
        root, "test-verify-v1", random_state_dict(), make_card(PreprocessConfig()), False
    )


@pytest.fixture
def copy(exported, tmp_path) -> Path:
    target = tmp_path / exported.name
    shutil.copytree(exported, target)
    return target


def _edit_card(path: Path, **changes) -> None:
    card = json.loads((path / "card.json").read_text())
    card.update(changes)
    (path / "card.json").write_text(json.dumps(card))


def test_a_directory_that_matches_its_card_is_verified_with_every_files_checksum(exported):
    verified = verify_model_dir(exported)

    assert verified.version == "test-verify-v1"
    assert set(verified.checksums) == {"card.json", "weights.pt"}
    assert verified.checksums["weights.pt"] == verified.card["weights_sha256"]


def test_weights_that_are_not_the_cards_are_refused(copy):
    with open(copy / "weights.pt", "ab") as handle:
        handle.write(b"\0")

    with pytest.raises(ModelDirectoryRefused, match="different exports"):
        verify_model_dir(copy)


def test_classes_in_another_order_are_refused(copy):
    _edit_card(copy, classes=list(reversed(CLASSES)))

    with pytest.raises(ModelDirectoryRefused, match="not the portal's") as refusal:
        verify_model_dir(copy)
    assert "under another's name" in str(refusal.value)


def test_preprocessing_this_code_does_not_do_is_refused(copy):
    card = json.loads((copy / "card.json").read_text())
    preprocessing = {**card["preprocessing"], "interpolation": "bilinear"}
    _edit_card(copy, preprocessing=preprocessing)

    with pytest.raises(ModelDirectoryRefused, match="preprocessing is not what this portal"):
        verify_model_dir(copy)


def test_a_card_whose_input_size_contradicts_its_preprocessing_is_refused(copy):
    _edit_card(copy, input_size=999)

    with pytest.raises(ModelDirectoryRefused, match="contradicts itself"):
        verify_model_dir(copy)


def test_an_onnx_form_that_is_not_the_file_measured_is_refused(copy):
    (copy / "model.onnx").write_bytes(b"not the measured network")
    _edit_card(copy, runtimes={"onnx-fp32": {"file": "model.onnx", "sha256": "0" * 64}})

    with pytest.raises(ModelDirectoryRefused, match="model.onnx .onnx-fp32. is not the file"):
        verify_model_dir(copy)


def test_a_form_built_at_load_has_no_file_to_check(copy):
    parity = {"top1_agreement": 1.0}
    _edit_card(copy, runtimes={"torch-compile": {"servable": True, "parity": parity}})

    assert verify_model_dir(copy).card["runtimes"]["torch-compile"]["servable"]


def test_an_image_gate_fitted_for_another_version_is_refused(copy):
    (copy / "gate.json").write_text(json.dumps({"version": "some-other-model"}))

    with pytest.raises(ModelDirectoryRefused, match="fitted for 'some-other-model'"):
        verify_model_dir(copy)


def test_a_folder_without_a_card_is_refused(tmp_path):
    with pytest.raises(ModelDirectoryRefused, match="has no card.json"):
        verify_model_dir(tmp_path)


def test_weights_of_another_network_are_refused_although_the_checksum_matches(tmp_path):
    # The card describes a LesionNet with a metadata branch; the weights are a plain v1 network,
    # and the checksum was written for them, so only loading them shows the mismatch.
    card = {**make_card(PreprocessConfig()), "network": "lesionnet", "metadata": {"used": True}}
    path = write_model_dir(tmp_path, "test-mismatch-v1", random_state_dict(), card, False)

    with pytest.raises(ModelDirectoryRefused, match="do not load into the network"):
        verify_model_dir(path)
