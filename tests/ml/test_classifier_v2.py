"""v2 models (LesionNet, ml.model) served by ml.inference: metadata in, and the export's
shortcut (features once, head many times) equal to the served forward pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ml import metadata as meta
from ml.classes import CLASSES
from ml.data import Record
from ml.export import write_model_dir
from ml.export_v2 import head_logits, pooled_features
from ml.inference import Classifier, forward_logits, tta_views
from ml.preprocessing import PreprocessConfig, to_model_input
from tests.ml.conftest import lesion_like_image, random_lesionnet, v2_card

V2_VERSION = "test-lesionnet-v2"


@pytest.fixture(scope="module")
def v2_classifier(tmp_path_factory) -> Classifier:
    root = tmp_path_factory.mktemp("v2models")
    config = PreprocessConfig(input_size=128)
    model = random_lesionnet(True)
    write_model_dir(root, V2_VERSION, model.state_dict(), v2_card(config, use_metadata=True))
    return Classifier.load(root / V2_VERSION, threads=1)


def test_metadata_changes_the_answer_and_the_prediction_says_what_it_used(v2_classifier):
    image = lesion_like_image((200, 150))

    without = v2_classifier.predict(image)
    partial = v2_classifier.predict(image, meta.parse(age=80, sex=None, site="face"))

    assert without.metadata_used == ()
    assert partial.metadata_used == ("age", "site")
    assert without.probabilities != pytest.approx(partial.probabilities)
    assert sum(partial.probabilities.values()) == pytest.approx(1.0)


def test_no_metadata_is_the_same_as_all_fields_missing(v2_classifier):
    image = lesion_like_image((220, 160), seed=3)

    none = v2_classifier.predict(image)
    empty = v2_classifier.predict(image, meta.LesionMetadata())

    assert none.probabilities == pytest.approx(empty.probabilities, abs=1e-9)


def test_batch_with_mixed_metadata_matches_one_by_one(v2_classifier):
    images = [lesion_like_image((200, 150), seed=i) for i in range(3)]
    records = [meta.parse(40, "male", "back"), None, meta.parse(site="acral")]

    batch = v2_classifier.predict_batch(images, metadata=records)
    single = [v2_classifier.predict(i, r) for i, r in zip(images, records, strict=True)]

    for a, b in zip(batch, single, strict=True):
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-5)
        assert a.metadata_used == b.metadata_used


def test_metadata_count_must_match_the_images(v2_classifier):
    with pytest.raises(ValueError, match="2 metadata records for 1 images"):
        v2_classifier.predict_batch([lesion_like_image()], metadata=[None, None])


def test_shown_class_is_the_balanced_decision_of_the_card(v2_classifier):
    prediction = v2_classifier.predict(lesion_like_image(seed=9))

    probs = np.array([prediction.probabilities[c] for c in CLASSES])
    weights = np.array(v2_classifier.card["decision"]["class_weights"])
    assert prediction.top_class == CLASSES[int((probs * weights).argmax())]


def test_image_only_v2_model_ignores_metadata(tmp_path):
    config = PreprocessConfig(input_size=128)
    write_model_dir(
        tmp_path,
        "image-only",
        random_lesionnet(False).state_dict(),
        v2_card(config, use_metadata=False),
    )
    classifier = Classifier.load(tmp_path / "image-only", threads=1)
    image = lesion_like_image()

    a = classifier.predict(image, meta.parse(90, "male", "back"))
    b = classifier.predict(image)

    assert a.probabilities == pytest.approx(b.probabilities, abs=1e-9)
    assert a.metadata_used == ()


def test_grad_cam_works_on_a_v2_model(v2_classifier):
    image = lesion_like_image((240, 180))

    heatmap = v2_classifier.heatmap(image, "mel")

    assert heatmap.size == image.size


def test_export_shortcut_equals_the_served_forward_pass(tmp_path: Path):
    """Averaging pooled features over views, then the head, is the mean of the views'
    logits: the export's figures are those of the served model with 8-view TTA."""
    config = PreprocessConfig(input_size=128)
    model = random_lesionnet(True, seed=4)
    records, metas = [], []
    for i in range(5):
        record = Record(f"ISIC_{i:07d}", f"HAM_{i}", "nv")
        lesion_like_image((200, 150), seed=i).save(tmp_path / f"{record.image_id}.jpg")
        records.append(record)
        metas.append(meta.parse(30 + 10 * i, "female", "trunk") if i % 2 else None)

    features = pooled_features(model, records, tmp_path, config)
    shortcut = head_logits(model, features[8], metas)

    batch = []
    for record in records:
        with Image.open(tmp_path / f"{record.image_id}.jpg") as image:
            batch.append(to_model_input(image, config))
    vectors = torch.stack([meta.encode(m) for m in metas])
    with torch.inference_mode():
        served = forward_logits(model, torch.stack(batch), 8, vectors).numpy()
    np.testing.assert_allclose(shortcut, served, atol=1e-4)


def _labelled_folder(tmp_path: Path, n: int = 14) -> Path:
    """n images with HAM10000-style labels and metadata (two of each class)."""
    lines = ["image_id,dx,age,sex,localization,dataset"]
    for i in range(n):
        image_id = f"IMG_{i:03d}"
        lesion_like_image((200, 150), seed=i).save(tmp_path / f"{image_id}.jpg")
        site = ["back", "face", "unknown", "acral"][i % 4]
        age = "" if i % 5 == 0 else str(20 + 5 * i)
        lines.append(
            f"{image_id},{CLASSES[i % 7]},{age},{['male', 'female'][i % 2]},{site},s{i % 2}"
        )
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(lines) + "\n")
    return labels


def test_evaluate_passes_metadata_through_and_breaks_melanoma_down(tmp_path, v2_classifier):
    from ml.evaluate import evaluate, find_images, read_labels

    labels = read_labels(_labelled_folder(tmp_path))
    paths = find_images(tmp_path, labels.image_ids)

    with_meta, probs_meta = evaluate(v2_classifier, labels, paths)
    image_only, probs_image = evaluate(v2_classifier, labels, paths, use_metadata=False)

    assert with_meta["metadata"] == {
        "columns": ["age", "sex", "localization"],
        "read_by_model": True,
    }
    assert image_only["metadata"]["read_by_model"] is False
    assert not np.allclose(probs_meta, probs_image)
    groups = with_meta["melanoma_by_group"]
    assert set(groups) == {"site", "age", "sex", "source"}
    assert sum(g["n"] for g in groups["site"].values()) == len(paths)
    assert groups["site"]["unknown"]["n"] == 3  # "unknown" is missing, not a site


def test_evaluate_balanced_accuracy_matches_isic_challenge_scoring(tmp_path, v2_classifier):
    """The official scorer, given the probabilities ml.evaluate computed, agrees with it
    once the shown class (the card's balanced decision) is what both score."""
    import pandas as pd
    from isic_challenge_scoring.metrics import balanced_multiclass_accuracy

    from ml.evaluate import evaluate, find_images, read_labels

    labels = read_labels(_labelled_folder(tmp_path))
    result, probs = evaluate(v2_classifier, labels, find_images(tmp_path, labels.image_ids))

    shown = np.array([v2_classifier.decide(row) for row in probs])
    columns = [c.upper() for c in CLASSES]
    truth = pd.DataFrame(np.eye(7)[labels.targets], columns=columns)
    submitted = pd.DataFrame(np.eye(7)[shown], columns=columns)
    official = balanced_multiclass_accuracy(truth, submitted, pd.Series(np.ones(len(shown))))
    assert result["metrics"]["balanced_accuracy"] == pytest.approx(official, abs=1e-12)


def test_eight_view_tta_is_the_mean_of_the_dihedral_views_run_alone(v2_classifier):
    model = v2_classifier.model
    batch = torch.stack([v2_classifier.preprocess(lesion_like_image(seed=s)) for s in range(5)])
    vectors = v2_classifier.metadata_tensor([meta.parse(60, "male", "back")] * 5, 5)

    with torch.inference_mode():
        together = forward_logits(model, batch, 8, vectors)
        alone = torch.stack(
            [
                forward_logits(model, view.contiguous(), False, vectors)
                for view in tta_views(batch, 8)
            ]
        ).mean(0)
        transposed = tta_views(batch, 8)[4]

    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(transposed, batch.transpose(2, 3))


def test_v1_stays_loadable_beside_v2():
    from ml.inference import MODELS_ROOT

    v1_dir = MODELS_ROOT / "ham10000-lite0-v1"
    if not (v1_dir / "weights.pt").is_file():
        pytest.skip("v1 weights not in this checkout")
    v1 = Classifier.load(v1_dir, threads=1)

    prediction = v1.predict(lesion_like_image(), meta.parse(50, "female", "back"))

    assert prediction.model_version == "ham10000-lite0-v1"
    assert prediction.metadata_used == ()  # v1 reads the image only
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)
