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


def embeddings_of(images, classifier, features=None) -> list[tuple[str, bytes] | None]:
    """`embedding_of` for several images at once (a worker's batch): one pass through the
    network for all of them, or none when `features` (n, d), the pooled features the
    classifier's prediction pass already gave, are passed. A failure is logged and gives None
    for each, as for one."""
    from diagnosis.classifier import embedder_for

    try:
        embedder = embedder_for(classifier)
        if embedder is None:
            return [None] * len(images)
        vectors = embedder.of_all(images) if features is None else embedder.of_features(features)
    except Exception:
        logger.exception("the images' embeddings failed; the results are stored without them")
        return [None] * len(images)
    return [(embedder.space, vector.astype("<f4").tobytes()) for vector in vectors]


def embedding_store(
    analysis: Analysis, embedding: tuple[str, bytes] | None, *, clinic_id: int | None = None
) -> None:
    """Keep the embedding with the analysis (inside the caller's transaction); a second run
    of the same analysis replaces it. `clinic_id`, when the caller has it, saves reading the
    image, lesion and patient rows to find it."""
    if embedding is None:
        return
    space, vector = embedding
    if clinic_id is None:
        clinic_id = analysis.image.lesion.patient.clinic_id
    # One INSERT ... ON CONFLICT DO UPDATE, where update_or_create took a SELECT ... FOR UPDATE,
    # an INSERT and two savepoints: four round trips of a worker's store, per analysis.
    ImageEmbedding.objects.bulk_create(
        [ImageEmbedding(analysis=analysis, space=space, vector=vector, clinic_id=clinic_id)],
        update_conflicts=True,
        unique_fields=["analysis"],
        update_fields=["space", "vector", "clinic"],
    )
