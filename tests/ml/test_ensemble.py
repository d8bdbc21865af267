"""Several LesionNets served as one (ml.model.LesionEnsemble), stored at half precision, and
weights averaged over epochs (ml.swa)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml import metadata as meta
from ml.export import write_model_dir
from ml.inference import Classifier
from ml.model import LesionEnsemble
from ml.preprocessing import PreprocessConfig, to_model_input
from ml.swa import average_state_dicts, recompute_batch_norm
from tests.ml.conftest import lesion_like_image, random_lesionnet, v2_card


def _ensemble_card(config: PreprocessConfig) -> dict:
    card = v2_card(config, use_metadata=True)
    card["network"] = "ensemble"
    card["members"] = [
        {"architecture": "tf_efficientnet_lite0", "metadata": True},
        {"architecture": "tf_efficientnet_lite0", "metadata": False},
    ]
    return card


def test_ensemble_logits_are_the_mean_of_its_members():
    a, b = random_lesionnet(True, seed=1), random_lesionnet(False, seed=2)
    ensemble = LesionEnsemble([a, b]).eval()
    images = torch.stack(
        [to_model_input(lesion_like_image(seed=s), PreprocessConfig(128)) for s in (0, 1)]
    )
    record = torch.stack([meta.encode(meta.parse(60, "male", "back"))] * 2)

    with torch.inference_mode():
        mean = (a.eval()(images, record) + b.eval()(images)) / 2
        served = ensemble(images, record)

    torch.testing.assert_close(served, mean)


def test_two_members_fit_the_size_limit_only_at_half_precision(tmp_path):
    config = PreprocessConfig(input_size=128)
    ensemble = LesionEnsemble([random_lesionnet(True, seed=1), random_lesionnet(False, seed=2)])
    with pytest.raises(ValueError, match="over the 25.0 MB limit"):
        write_model_dir(tmp_path, "full", ensemble.state_dict(), _ensemble_card(config))

    half = write_model_dir(
        tmp_path, "half", ensemble.state_dict(), _ensemble_card(config), half=True
    )
    served = Classifier.load(half, threads=1)
    in_memory = Classifier(ensemble, {**_ensemble_card(config), "version": "mem"}, tmp_path, 1)
    image, record = lesion_like_image(seed=3), meta.parse(45, "female", "face")

    p_half = served.predict(image, record)
    p_full = in_memory.predict(image, record)

    assert p_half.probabilities == pytest.approx(p_full.probabilities, abs=2e-3)
    assert p_half.metadata_used == ("age", "sex", "site")
    assert served.heatmap(image, "mel").size == image.size


def test_weight_average_is_elementwise_and_keeps_integer_buffers():
    a, b = (
        random_lesionnet(False, seed=1).state_dict(),
        random_lesionnet(False, seed=2).state_dict(),
    )
    key = next(k for k, v in a.items() if v.is_floating_point() and v.dim() == 4)
    counter = next(k for k, v in a.items() if not v.is_floating_point())
    b[counter] = a[counter] + 7

    averaged = average_state_dicts([a, b])

    torch.testing.assert_close(averaged[key], (a[key] + b[key]) / 2)
    assert torch.equal(averaged[counter], b[counter])


def test_batch_norm_statistics_are_re_estimated_from_the_data():
    model = random_lesionnet(True, seed=5)
    norm = model.backbone.bn1
    norm.running_mean.fill_(123.0)
    images = torch.stack(
        [to_model_input(lesion_like_image(seed=s), PreprocessConfig(128)) for s in range(4)]
    )
    metadata = torch.stack([meta.encode(None)] * 4)

    recompute_batch_norm(model, [(images, metadata, torch.zeros(4))])

    assert not model.training
    assert np.abs(norm.running_mean.numpy()).max() < 100
