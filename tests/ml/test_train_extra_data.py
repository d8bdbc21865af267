"""`python -m ml.train --extra-data DIR`: HAM10000 plus a clinic's labelled export, each split
by lesion (issue 16's learning loop)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from ml import train
from ml.classes import CLASSES
from ml.data import Record, default_data_dir, extra_split
from tests.ml.conftest import lesion_like_image

HAM = default_data_dir()
needs_ham = pytest.mark.skipif(
    not (HAM / "metadata.csv").is_file(), reason=f"HAM10000 is not at {HAM}"
)


def _export(folder: Path, lesions: int = 12, images_per_lesion: int = 2) -> Path:
    """A small export in the layout manage.py export_training_set writes."""
    (folder / "images").mkdir(parents=True)
    fields = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization", "dataset"]
    with open(folder / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for lesion in range(lesions):
            for n in range(images_per_lesion):
                image_id = f"CLINIC_{lesion:03d}_{n}"
                lesion_like_image((200, 150), seed=lesion * 10 + n).save(
                    folder / "images" / f"{image_id}.jpg"
                )
                writer.writerow(
                    {
                        "lesion_id": f"CLINIC_L{lesion:03d}",
                        "image_id": image_id,
                        "dx": CLASSES[lesion % len(CLASSES)],
                        "dx_type": "histo",
                        "age": 40 + lesion,
                        "sex": "female",
                        "localization": "back",
                        "dataset": "clinic",
                    }
                )
    return folder


def test_an_export_is_split_by_lesion_and_by_nothing_else():
    records = [Record(f"I{i}", f"L{i // 3}", "nv") for i in range(300)]

    parts = extra_split(records)
    again = extra_split(list(reversed(records)))

    train_lesions = {r.lesion_id for r in parts["train"]}
    val_lesions = {r.lesion_id for r in parts["val"]}
    assert not train_lesions & val_lesions
    assert 0.05 < len(parts["val"]) / len(records) < 0.30
    assert {r.image_id for r in again["val"]} == {r.image_id for r in parts["val"]}


@needs_ham
def test_training_data_adds_the_export_to_both_sides(tmp_path):
    export = _export(tmp_path / "export")

    ham_train, ham_select, _, _ = train.training_data(HAM)
    both_train, both_select, rows, folders = train.training_data(HAM, [export])

    added = {r.image_id for r in both_train + both_select} - {
        r.image_id for r in ham_train + ham_select
    }
    assert len(added) == 24
    assert len(both_train) > len(ham_train) and len(both_select) > len(ham_select)
    assert folders["CLINIC_000_0"] == export / "images"
    assert rows["CLINIC_000_0"]["localization"] == "back"


@needs_ham
def test_an_image_id_already_in_the_data_is_refused(tmp_path):
    export = _export(tmp_path / "export", lesions=1, images_per_lesion=1)
    text = (export / "metadata.csv").read_text().replace("CLINIC_000_0", "ISIC_0024306")
    (export / "metadata.csv").write_text(text)

    with pytest.raises(SystemExit, match="ISIC_0024306 is already in the data"):
        train.training_data(HAM, [export])


@needs_ham
def test_ml_train_runs_on_ham10000_plus_an_export(tmp_path):
    export = _export(tmp_path / "export")
    out = tmp_path / "run"

    train.main(
        [
            "--out", str(out), "--extra-data", str(export), "--epochs", "1", "--size", "64",
            "--batch-size", "4", "--max-train", "16", "--max-select", "40", "--threads", "1",
            "--workers", "0", "--metadata", "--patience", "9",
        ]
    )  # fmt: skip

    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert log[0]["epoch"] == 1
    checkpoint = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    assert checkpoint["args"]["extra_data"] == str([export])


def test_the_card_records_each_extra_folder_as_a_flag():
    from ml.export import training_command

    args = {"epochs": "6", "extra_data": "[PosixPath('/x/a'), PosixPath('/x/b')]", "seed": "7"}
    none = {"epochs": "6", "extra_data": "[]"}

    assert training_command(args) == (
        "python -m ml.train --epochs 6 --extra-data /x/a --extra-data /x/b --seed 7"
    )
    assert training_command(none) == "python -m ml.train --epochs 6"
