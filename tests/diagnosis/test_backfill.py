"""Images stored before lesion-centric care get their perceptual hash and embedding later."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command

from diagnosis.image_fingerprint import is_informative
from diagnosis.models import DermoscopicImage, ImageEmbedding
from tests import factories

SHIPPED_ROOT = Path(__file__).resolve().parents[2] / "ml" / "models"


def _old_image(lesion):
    return factories.DermoscopicImageFactory(
        lesion=lesion, file=ContentFile(factories.SAMPLE.read_bytes(), name="old.jpg")
    )


def test_old_images_get_their_hash_once_and_a_purged_one_is_left_alone(lesion):
    old = _old_image(lesion)
    purged = factories.DermoscopicImageFactory(lesion=lesion, file="")

    call_command("lesion_care_backfill", "--no-embeddings", stdout=io.StringIO())

    old.refresh_from_db()
    assert is_informative(old.perceptual_hash)
    assert DermoscopicImage.objects.get(pk=purged.pk).perceptual_hash == ""
    before = old.perceptual_hash
    call_command("lesion_care_backfill", "--no-embeddings", stdout=io.StringIO())
    old.refresh_from_db()
    assert old.perceptual_hash == before


def test_old_results_of_the_served_model_get_their_embedding(settings, lesion):
    current = SHIPPED_ROOT / "CURRENT"
    if not current.is_file():
        pytest.skip("no trained model installed")
    version = current.read_text().strip()
    if not (SHIPPED_ROOT / version / "embedding.npz").is_file():
        pytest.skip(f"{version} ships no embedding reduction")
    settings.ML_MODELS_ROOT = SHIPPED_ROOT
    from diagnosis.classifier import get_classifier

    mine = factories.DoneAnalysisFactory(image=_old_image(lesion), model_version=version)
    other_model = factories.DoneAnalysisFactory(image=_old_image(lesion), model_version="v0")
    get_classifier.cache_clear()
    try:
        call_command("lesion_care_backfill", stdout=io.StringIO())
    finally:
        get_classifier.cache_clear()

    stored = ImageEmbedding.objects.get(analysis=mine)
    assert stored.space.startswith(f"{version}/") and stored.clinic_id == lesion.patient.clinic_id
    assert not ImageEmbedding.objects.filter(analysis=other_model).exists()
