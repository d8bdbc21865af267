"""The clinic's record of a lesion as model input: parsing, encoding, dropout."""

from __future__ import annotations

import pytest
import torch

from ml import metadata as meta


def test_ham10000_and_isic_site_names_land_in_the_same_group():
    assert meta.site_group("chest") == meta.site_group("anterior torso") == "trunk"
    assert meta.site_group("back") == meta.site_group("posterior torso") == "trunk"
    assert meta.site_group("acral") == meta.site_group("palms/soles") == "palms/soles"
    assert meta.site_group("Face") == "head/neck"


@pytest.mark.parametrize("site", ["unknown", "", None, "elbow of a cat"])
def test_unknown_or_unrecognised_sites_are_missing(site):
    assert meta.site_group(site) is None


def test_a_ham10000_row_parses_to_age_sex_and_site_group():
    row = {"age": "45.0", "sex": "male", "localization": "lower extremity"}

    record = meta.from_row(row)

    assert record == meta.LesionMetadata(age=45.0, sex="male", site="lower extremity")
    assert record.present == ("age", "sex", "site")


@pytest.mark.parametrize("age", ["", "nan", "-3", "400", "forty", None])
def test_implausible_or_empty_ages_are_missing_not_guessed(age):
    assert meta.parse(age=age).age is None


def test_encoding_flags_each_missing_field():
    empty = meta.encode(None)
    full = meta.encode(meta.parse(70, "female", "back"))

    assert empty.shape == full.shape == (meta.N_FEATURES,)
    assert empty.sum() == 3  # three missing flags, nothing else
    assert full[0] == pytest.approx(0.7)
    assert full[1] == 0  # age present
    assert full.sum() == pytest.approx(0.7 + 2)  # age, one sex, one site


def test_metadata_dropout_forgets_fields_at_about_the_asked_rate():
    record = meta.parse(50, "male", "trunk")
    generator = torch.Generator().manual_seed(0)

    kept = [meta.drop_fields(record, 0.3, generator).present for _ in range(2000)]

    age_rate = sum("age" in k for k in kept) / len(kept)
    assert age_rate == pytest.approx(0.7, abs=0.05)
    assert meta.drop_fields(record, 0.0, generator) == record
