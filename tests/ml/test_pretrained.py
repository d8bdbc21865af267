"""The ImageNet weights must load key for key, and still recognise an ImageNet picture."""

from __future__ import annotations

import timm
import torch
from PIL import Image

from ml.preprocessing import PreprocessConfig, to_model_input
from ml.pretrained import lite0_weights_path, load_imagenet_lite0, map_state_dict

# ImageNet-1k: 281 tabby, 282 tiger cat, 283 Persian, 284 Siamese, 285 Egyptian cat.
DOMESTIC_CATS = range(281, 286)


def test_key_mapping_covers_every_timm_tensor_exactly():
    state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    mapped = map_state_dict(state)
    expected = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()

    assert set(mapped) == set(expected)
    assert all(mapped[k].shape == expected[k].shape for k in expected)


def test_imagenet_lite0_classifies_chelsea_as_a_cat():
    from skimage import data

    model = load_imagenet_lite0().eval()  # load_state_dict(strict=True) inside
    image = Image.fromarray(data.chelsea())
    batch = to_model_input(image, PreprocessConfig(input_size=224))[None]

    with torch.inference_mode():
        top = int(model(batch).argmax(1))

    assert top in DOMESTIC_CATS


def test_imagenet_lite1_loads_strictly_and_classifies_chelsea_as_a_cat():
    """Lite1 is deeper per stage than Lite0's B0 layout; the depths come from timm's model."""
    from skimage import data

    from ml.pretrained import load_imagenet, stage_depths

    model = load_imagenet("tf_efficientnet_lite1").eval()
    image = Image.fromarray(data.chelsea())
    batch = to_model_input(image, PreprocessConfig(input_size=240))[None]

    with torch.inference_mode():
        top = int(model(batch).argmax(1))

    assert stage_depths(model) == (1, 3, 3, 4, 4, 5, 1)
    assert top in DOMESTIC_CATS
