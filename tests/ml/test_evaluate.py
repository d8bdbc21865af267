"""ml.evaluate reads every supported labels form, fails clearly, and writes its outputs."""

from __future__ import annotations

import json

import pytest

from ml.evaluate import LabelsError, find_images, main, read_labels
from tests.ml.conftest import TEST_VERSION, lesion_like_image


def _write(path, text):
    path.write_text(text)
    return path


def test_reads_dx_labels(tmp_path):
    labels = read_labels(_write(tmp_path / "l.csv", "image_id,dx\nA,mel\nB,NV\n"))

    assert labels.form == "multiclass"
    assert labels.targets.tolist() == [4, 5]


def test_reads_isic_2018_one_hot_ground_truth(tmp_path):
    text = (
        "image,MEL,NV,BCC,AKIEC,BKL,DF,VASC\n"
        "A,1.0,0.0,0.0,0.0,0.0,0.0,0.0\n"
        "B,0.0,0.0,1.0,0.0,0.0,0.0,0.0\n"
    )

    labels = read_labels(_write(tmp_path / "l.csv", text))

    assert labels.image_ids == ["A", "B"]
    assert labels.targets.tolist() == [4, 1]


def test_reads_binary_melanoma_labels(tmp_path):
    labels = read_labels(_write(tmp_path / "l.csv", "image_id,melanoma\nA,1\nB,0\n"))

    assert labels.form == "binary"
    assert labels.targets.tolist() == [1, 0]


@pytest.mark.parametrize(
    "text, message",
    [
        ("name,diagnosis\nA,mel\n", "no 'image_id'"),
        ("image_id,label\nA,mel\n", "match no supported form"),
        ("image_id,dx\nA,melanoma\n", "unknown dx"),
        ("image_id,melanoma\nA,yes\n", "0 or 1"),
    ],
)
def test_bad_labels_files_say_what_is_wrong(tmp_path, text, message):
    with pytest.raises(LabelsError, match=message):
        read_labels(_write(tmp_path / "l.csv", text))


def test_missing_images_are_all_named(tmp_path):
    lesion_like_image().save(tmp_path / "A.png")

    with pytest.raises(LabelsError, match="2 of 3 images") as caught:
        find_images(tmp_path, ["A", "B", "C"])

    assert "B" in str(caught.value) and "C" in str(caught.value)


def test_evaluate_writes_metrics_predictions_and_plots(tmp_path, models_root, capsys):
    images = tmp_path / "images"
    images.mkdir()
    rows = ["image_id,dx"]
    for i, dx in enumerate(["mel", "nv", "bkl", "mel", "nv", "df"]):
        lesion_like_image((260 + 10 * i, 200), seed=i).save(images / f"IMG_{i}.jpg")
        rows.append(f"IMG_{i},{dx}")
    labels = _write(tmp_path / "labels.csv", "\n".join(rows) + "\n")
    out = tmp_path / "out"

    code = main(
        ["--images", str(images), "--labels", str(labels), "--out", str(out),
         "--model-dir", str(models_root / TEST_VERSION), "--threads", "1"]
    )  # fmt: skip

    assert code == 0
    result = json.loads((out / "metrics.json").read_text())
    assert result["n_images"] == 6
    assert result["model_version"] == TEST_VERSION
    assert "balanced_accuracy" in result["metrics"]
    assert result["metrics"]["melanoma"]["n_melanoma"] == 2
    for name in ("confusion_matrix.png", "roc.png", "reliability.png", "predictions.csv"):
        assert (out / name).stat().st_size > 0
    assert json.loads(capsys.readouterr().out) == result


def test_evaluate_with_binary_labels_reports_melanoma_metrics_only(tmp_path, models_root):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        lesion_like_image(seed=i).save(images / f"B{i}.jpg")
    labels = _write(tmp_path / "l.csv", "image_id,melanoma\nB0,1\nB1,0\nB2,0\nB3,1\n")

    code = main(["--images", str(images), "--labels", str(labels), "--out", str(tmp_path / "o"),
                 "--model-dir", str(models_root / TEST_VERSION)])  # fmt: skip

    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())["metrics"]
    assert code == 0
    assert "balanced_accuracy" not in metrics
    assert metrics["melanoma"]["n_melanoma"] == 2


def test_evaluate_exits_with_a_message_for_a_bad_csv(tmp_path, capsys):
    labels = _write(tmp_path / "l.csv", "foo,bar\n1,2\n")

    code = main(["--images", str(tmp_path), "--labels", str(labels)])

    assert code == 2
    assert "no 'image_id'" in capsys.readouterr().err
