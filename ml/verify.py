"""Check that an exported model directory is what its card says, before the portal registers it.

    verified = verify_model_dir(Path("exports/ham10000-lite0-v3"))
    verified.card, verified.checksums       # the card, and the sha256 of every file

A model is served exactly as it was measured only if the files are the ones the card was written
for and this code reproduces what the card recorded. So a directory is refused, with a message
that says which file or field and what to do, when:
- it has no readable card.json, or the card names no version;
- its weights (or an ONNX form, or the image gate) are not the files the card names by checksum
  or by version;
- its classes are not the portal's seven, in the portal's order;
- its preprocessing is not what this version of ml/ does;
- the weights do not load into the network the card describes, or give no probabilities.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ml.classes import CLASSES
from ml.runtimes import file_sha256
from ml.served import CARD_FILE, WEIGHTS_FILE, preprocess_config

GATE_FILE = "gate.json"
__all__ = ["ModelDirectoryRefused", "VerifiedModel", "file_sha256", "verify_model_dir"]


class ModelDirectoryRefused(ValueError):
    """The directory does not match its card; the message says where and what to do."""


@dataclass(frozen=True)
class VerifiedModel:
    path: Path
    card: dict
    checksums: dict[str, str]  # file name -> sha256, every file of the directory

    @property
    def version(self) -> str:
        return self.card["version"]


def _read_card(path: Path) -> dict:
    if not path.is_dir():
        raise ModelDirectoryRefused(f"{path} is not a directory.")
    card_path = path / CARD_FILE
    if not card_path.is_file():
        raise ModelDirectoryRefused(
            f"{path} has no {CARD_FILE}: export the model with python -m ml.export "
            "(or ml.export_v2), which writes the card beside the weights."
        )
    try:
        card = json.loads(card_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelDirectoryRefused(f"{card_path} is not readable JSON ({error}).") from None
    if not isinstance(card, dict):
        raise ModelDirectoryRefused(f"{card_path} does not hold a model card (a JSON object).")
    version = card.get("version")
    if not isinstance(version, str) or not version or "/" in version or version.startswith("."):
        raise ModelDirectoryRefused(f"{card_path} names no usable version ({version!r}).")
    return card


def _check_classes(card: dict) -> None:
    classes = card.get("classes")
    if classes is None or tuple(classes) != CLASSES:
        raise ModelDirectoryRefused(
            f"The card's classes {classes} are not the portal's {list(CLASSES)} in that order: "
            "the portal would show one lesion type's probability under another's name. "
            "Export the model with this version of ml.classes."
        )


def _check_preprocessing(card: dict) -> None:
    if not isinstance(card.get("preprocessing"), dict):
        raise ModelDirectoryRefused("The card records no preprocessing: re-export the model.")
    try:
        config = preprocess_config(card)
    except (KeyError, TypeError, ValueError) as error:
        raise ModelDirectoryRefused(
            f"The card's preprocessing is not what this portal does to an image ({error}): "
            "its figures would not hold here. Re-export the model with this version of ml/."
        ) from None
    if int(card.get("input_size", config.input_size)) != config.input_size:
        raise ModelDirectoryRefused(
            f"The card's input size {card['input_size']} differs from its preprocessing's "
            f"{config.input_size}: the card contradicts itself; re-export the model."
        )


def _check_checksums(path: Path, card: dict, checksums: dict[str, str]) -> None:
    expected = card.get("weights_sha256")
    if WEIGHTS_FILE not in checksums:
        raise ModelDirectoryRefused(f"{path} has no {WEIGHTS_FILE}.")
    if not expected:
        raise ModelDirectoryRefused(
            f"The card records no weights_sha256, so nothing shows that {WEIGHTS_FILE} is the "
            "file it was measured with: re-export the model."
        )
    if checksums[WEIGHTS_FILE] != expected:
        raise ModelDirectoryRefused(
            f"{WEIGHTS_FILE} has sha256 {checksums[WEIGHTS_FILE][:12]}..., the card expects "
            f"{expected[:12]}...: the weights and the card come from different exports "
            "(or the file was damaged in the copy)."
        )
    for runtime, entry in (card.get("runtimes") or {}).items():
        if "file" not in entry:
            continue  # built at load (torch-compile): nothing shipped, nothing to check
        name = entry["file"]
        if name not in checksums:
            raise ModelDirectoryRefused(f"The card's {runtime} form {name!r} is not in {path}.")
        if checksums[name] != entry.get("sha256"):
            raise ModelDirectoryRefused(
                f"{name} ({runtime}) is not the file the card measured (sha256 differs): "
                "re-run python -m ml.runtimes, or copy the directory again."
            )
    if GATE_FILE in checksums:
        try:
            gate_version = json.loads((path / GATE_FILE).read_text()).get("version")
        except (OSError, ValueError):
            gate_version = None
        if gate_version != card["version"]:
            raise ModelDirectoryRefused(
                f"{GATE_FILE} was fitted for {gate_version!r}, not for {card['version']!r}: "
                "fit the image gate for this model (python -m ml.gate fit)."
            )


def _check_loads(path: Path, card: dict, runtime: str) -> None:
    try:
        if runtime == "torch":
            from ml.inference import Classifier

            classifier = Classifier.load(path, warm_up=False, runtime="torch")
        else:
            from ml.onnx_serving import OnnxClassifier

            classifier = OnnxClassifier.load(path, runtime=runtime, warm_up=False)
        prediction = classifier.predict(Image.new("RGB", (64, 64), (180, 120, 100)))
    except Exception as error:  # noqa: BLE001 - any failure here is a refusal, in words
        raise ModelDirectoryRefused(
            f"The weights do not load into the network the card describes "
            f"({type(error).__name__}: {str(error)[:300]})."
        ) from None
    total = sum(prediction.probabilities.values())
    if not all(math.isfinite(p) for p in prediction.probabilities.values()) or not math.isclose(
        total, 1.0, abs_tol=1e-4
    ):
        raise ModelDirectoryRefused(
            f"The model gives no probabilities (they sum to {total}): the export is broken."
        )


def verify_model_dir(path: Path, *, runtime: str | None = "torch") -> VerifiedModel:
    """The directory's card and checksums; ModelDirectoryRefused when it does not match.

    `runtime` is the form that must load and give probabilities: the PyTorch network by
    default; a worker serving an ONNX form checks that form instead (its checksum, and the
    weights' it was measured against, are checked either way), so it never imports torch.
    None checks files and card only: the load is then checked by whichever process serves
    the version (a torch-free worker registering a directory that has no ONNX form)."""
    path = Path(path)
    card = _read_card(path)
    _check_classes(card)
    _check_preprocessing(card)
    checksums = {
        entry.name: file_sha256(entry)
        for entry in sorted(path.iterdir())
        if entry.is_file() and not entry.name.startswith(".")
    }
    _check_checksums(path, card, checksums)
    if runtime is not None:
        _check_loads(path, card, runtime)
    return VerifiedModel(path, card, checksums)
