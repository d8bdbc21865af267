"""Fill in what images stored before lesion-centric care lack: the perceptual hash the
duplicate warning compares, and the embedding similar cases are found by. Run by
`manage.py lesion_care_backfill`; safe to run again (only what is missing is computed) and
to stop at any point. Derived data, no person's write: nothing is audited."""

from __future__ import annotations

import logging

from django.db import transaction

from diagnosis.image_fingerprint import difference_hash
from diagnosis.models import Analysis, AnalysisStatus, DermoscopicImage
from diagnosis.services.embedding import embedding_of, embedding_store
from diagnosis.services.image import _open_image

logger = logging.getLogger(__name__)


def images_fingerprint_missing(*, limit: int | None = None) -> int:
    """Compute the perceptual hash of stored images without one; returns how many. Images
    whose original is gone (retention) are left without."""
    images = DermoscopicImage.objects.filter(perceptual_hash="").exclude(file="").order_by("pk")
    done = 0
    for image in images[:limit] if limit else images.iterator():
        picture = _open_image(image)
        if picture is None:
            continue
        DermoscopicImage.objects.filter(pk=image.pk, perceptual_hash="").update(
            perceptual_hash=difference_hash(picture.convert("RGB"))
        )
        done += 1
    return done


def analyses_embed_missing(*, limit: int | None = None) -> int:
    """Store the served model's embedding of finished analyses without one, made by that same
    model (another model's result is not re-embedded: its probabilities and its vector would
    speak of two models); returns how many. None when the model ships no embedding."""
    from diagnosis.classifier import get_embedder

    embedder = get_embedder()
    if embedder is None:
        return 0
    analyses = (
        Analysis.objects.filter(
            status=AnalysisStatus.DONE,
            embedding__isnull=True,
            model_version=embedder.classifier.version,
        )
        .exclude(image__file="")
        .select_related("image__lesion__patient")
        .order_by("pk")
    )
    done = 0
    for analysis in analyses[:limit] if limit else analyses.iterator():
        picture = _open_image(analysis.image)
        embedding = embedding_of(picture.convert("RGB")) if picture is not None else None
        if embedding is None:
            continue
        with transaction.atomic():
            embedding_store(analysis, embedding)
        done += 1
    return done
