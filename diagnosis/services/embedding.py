"""The worker's embedding of an analysed image, stored with its prediction for the similar
confirmed cases (diagnosis.selectors.similar). No person writes one, so nothing is audited:
it is part of the analysis the worker stores."""

from __future__ import annotations

import logging

from diagnosis.models import Analysis, ImageEmbedding

logger = logging.getLogger(__name__)


def embedding_of(image, classifier=None) -> tuple[str, bytes] | None:
    """(space, vector as little-endian float32 bytes) of a PIL image by `classifier`'s
    embedding (the one that made the prediction; default the served one), or None when its
    model ships no reduction. A failure is logged and gives None: the prediction matters more
    than its embedding, which only feeds similar cases."""
    from diagnosis.classifier import embedder_for, get_embedder

    try:
        embedder = get_embedder() if classifier is None else embedder_for(classifier)
        if embedder is None:
            return None
        vector = embedder.of(image)
    except Exception:
        logger.exception("the image's embedding failed; the result is stored without one")
        return None
    return embedder.space, vector.astype("<f4").tobytes()


def embedding_store(analysis: Analysis, embedding: tuple[str, bytes] | None) -> None:
    """Keep the embedding with the analysis (inside the caller's transaction); a second run
    of the same analysis replaces it."""
    if embedding is None:
        return
    space, vector = embedding
    clinic_id = analysis.image.lesion.patient.clinic_id
    ImageEmbedding.objects.update_or_create(
        analysis=analysis, defaults={"space": space, "vector": vector, "clinic_id": clinic_id}
    )
