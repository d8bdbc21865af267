"""Training, validation, export and the portal must prepare an image identically."""

from __future__ import annotations

import torch
from PIL import Image

from ml.data import LesionImages, Record
from ml.preprocessing import (
    PreprocessConfig,
    eval_transform,
    to_model_input,
    train_transform,
)
from tests.ml.conftest import lesion_like_image


def test_served_input_equals_validation_input(tiny_classifier):
    image = lesion_like_image()
    validation = eval_transform(tiny_classifier.config)(image)

    served = tiny_classifier.preprocess(image)

    assert torch.equal(served, validation)


def test_dataset_from_jpeg_equals_served_input_from_same_file(tmp_path, tiny_classifier):
    lesion_like_image().save(tmp_path / "ISIC_0000001.jpg", quality=90)
    dataset = LesionImages(
        [Record("ISIC_0000001", "HAM_1", "mel")], tmp_path, eval_transform(tiny_classifier.config)
    )
    tensor, label = dataset[0]

    with Image.open(tmp_path / "ISIC_0000001.jpg") as image:
        served = tiny_classifier.preprocess(image)

    assert label == 4
    assert torch.equal(tensor, served)


def test_training_ends_with_the_same_tensor_conversion_as_serving():
    config = PreprocessConfig()
    crop = lesion_like_image((config.input_size, config.input_size))
    train_last = train_transform(config).transforms[-1]
    eval_last = eval_transform(config).transforms[-1]

    assert torch.equal(train_last(crop), eval_last(crop))


def test_training_output_has_the_serving_shape_and_range():
    config = PreprocessConfig()
    image = lesion_like_image()

    trained = train_transform(config)(image)
    served = to_model_input(image, config)

    assert trained.shape == served.shape == (3, config.input_size, config.input_size)
    assert trained.dtype == served.dtype == torch.float32
    assert -1.0 <= float(served.min()) and float(served.max()) <= 1.0


def test_greyscale_palette_and_alpha_images_become_three_channel_inputs():
    config = PreprocessConfig()
    base = lesion_like_image((320, 240))
    for image in (base.convert("L"), base.convert("P"), base.convert("RGBA"), base.convert("CMYK")):
        assert to_model_input(image, config).shape == (3, config.input_size, config.input_size)


def test_card_records_the_preprocessing_the_classifier_applies(tiny_classifier):
    assert tiny_classifier.card["preprocessing"] == tiny_classifier.config.as_dict()
