"""Similar confirmed cases: for a result, the clinic's most similar images whose diagnosis a
doctor's signed review or a histology result has confirmed, nearest first.

Only the user's clinic is ever searched: the vectors are held per clinic, and every candidate
is read again through the clinic-scoped analysis selector before it is shown, so an image of
another clinic cannot appear even if an index were wrong. A confirmed case is a finished,
analysed image (not one a doctor had analysed outside validated use) of another lesion than the
one asked about, with a histology result for its lesion, its own signed review, or the signed
review of its visit's latest image that covers it; its final diagnosis is the histology's, else
the review's. One case per lesion (its nearest image).

The lookup: each web process keeps, per clinic and embedding space, the vectors as one NumPy
matrix, read once in full and then only the rows added since (ImageEmbedding ids only grow;
the last LOOKBACK rows are read again, for a worker's transaction that committed after a later
one), and read in full again every REBUILD_AFTER_S (erasures). A query is one matrix-vector
product over the clinic's vectors, then one query for the nearest candidates' confirmation.
bench/similar_cases.py measures it at 100,000 vectors.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
from django.db.models import Prefetch, Q

from accounts.models import User
from accounts.permissions import is_clinic_member
from diagnosis.models import Analysis, AnalysisStatus, ImageEmbedding, Review
from diagnosis.selectors.analysis import analysis_list
from ml.neighbours import nearest

SIMILAR_COUNT = 5
# Nearest images read first; more only when too few of them are confirmed cases.
FIRST_CANDIDATES = 50
LOOKBACK = 1000
REBUILD_AFTER_S = 600.0


@dataclass(frozen=True)
class SimilarCase:
    analysis: Analysis  # with image, lesion and patient
    distance: float  # cosine distance, 0 (same direction) to 2
    diagnosis: str  # a DiagnosisChoice code
    diagnosis_label: str  # in words, "Other: ..." spelled out
    confirmed_by: str  # "histology" | "review"

    @property
    def similarity_label(self) -> str:
        return f"distance {self.distance:.2f}"


@dataclass
class _Index:
    """One clinic's vectors of one space."""

    analysis_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    row_ids: set[int] = field(default_factory=set)
    last_row: int = 0
    built_at: float = 0.0


_INDEXES: dict[tuple[int, str], _Index] = {}
_LOCK = threading.Lock()


def _clinic_rows(clinic_id: int, space: str):
    return ImageEmbedding.objects.filter(
        space=space, analysis__image__lesion__patient__clinic_id=clinic_id
    ).order_by("pk")


def _rows(
    clinic_id: int, space: str, after: int, only: list[int] | None = None
) -> list[tuple[int, int, bytes]]:
    rows = _clinic_rows(clinic_id, space).filter(pk__gt=after)
    if only is not None:
        rows = rows.filter(pk__in=only)
    return list(rows.values_list("pk", "analysis_id", "vector"))


def _recent_row_ids(clinic_id: int, space: str, after: int) -> list[int]:
    """Ids only (no vectors) of the rows past `after`: what an up-to-date index checks."""
    return list(_clinic_rows(clinic_id, space).filter(pk__gt=after).values_list("pk", flat=True))


def _vectors(rows: list[tuple[int, int, bytes]], dims: int) -> np.ndarray:
    if not rows:
        return np.zeros((0, dims), dtype=np.float32)
    raw = b"".join(bytes(vector) for _, _, vector in rows)
    return np.frombuffer(raw, dtype="<f4").reshape(len(rows), dims)


def clinic_index(clinic_id: int, space: str, dims: int) -> _Index:
    """The clinic's vectors of `space`, brought up to date (see the module's docstring)."""
    key = (clinic_id, space)
    with _LOCK:
        index = _INDEXES.get(key)
        now = time.monotonic()
        if index is None or now - index.built_at > REBUILD_AFTER_S:
            rows = _rows(clinic_id, space, 0)
            index = _Index(
                analysis_ids=np.array([a for _, a, _ in rows], dtype=np.int64),
                matrix=_vectors(rows, dims),
                row_ids={pk for pk, _, _ in rows},
                last_row=max((pk for pk, _, _ in rows), default=0),
                built_at=now,
            )
            _INDEXES[key] = index
            return index
        recent = _recent_row_ids(clinic_id, space, index.last_row - LOOKBACK)
        missing = [pk for pk in recent if pk not in index.row_ids]
        new = _rows(clinic_id, space, 0, only=missing) if missing else []
        if new:
            index.analysis_ids = np.concatenate(
                [index.analysis_ids, np.array([a for _, a, _ in new], dtype=np.int64)]
            )
            index.matrix = np.concatenate([index.matrix.reshape(-1, dims), _vectors(new, dims)])
            index.row_ids.update(pk for pk, _, _ in new)
            index.last_row = max(index.last_row, max(pk for pk, _, _ in new))
        return index


def forget_indexes() -> None:
    """Drop every process-held index (tests; a process that must not keep vectors)."""
    with _LOCK:
        _INDEXES.clear()


def _confirmed(analysis: Analysis) -> tuple[str, str, str] | None:
    """(code, label, "histology" | "review") of a candidate's final diagnosis, or None."""
    histology = getattr(analysis.image.lesion, "histopathology", None)
    if histology is not None:
        return histology.diagnosis, histology.diagnosis_label, "histology"
    review = analysis.signed[0] if analysis.signed else None
    if review is None and analysis.covered_by is not None and analysis.covered_by.is_signed:
        review = analysis.covered_by
    if review is not None:
        return review.diagnosis, review.diagnosis_label, "review"
    return None


def _candidates(user: User, ids: list[int], lesion_id: int) -> dict[int, Analysis]:
    queryset = (
        analysis_list(user=user)
        .filter(pk__in=ids, status=AnalysisStatus.DONE, overridden_at__isnull=True)
        .exclude(image__lesion_id=lesion_id)
        .select_related("image__lesion__histopathology", "covered_by")
        .prefetch_related(
            Prefetch(
                "reviews",
                queryset=Review.objects.filter(signed_at__isnull=False).order_by("-version"),
                to_attr="signed",
            )
        )
    )
    return {analysis.pk: analysis for analysis in queryset}


def _confirmed_ids(user: User) -> np.ndarray:
    """Ids of the clinic's analyses that could be confirmed cases (for the rare search where
    the nearest images are mostly unconfirmed)."""
    ids = (
        analysis_list(user=user)
        .filter(status=AnalysisStatus.DONE, overridden_at__isnull=True)
        .filter(
            Q(reviews__signed_at__isnull=False)
            | Q(image__lesion__histopathology__isnull=False)
            | Q(covered_by__signed_at__isnull=False)
        )
        .values_list("pk", flat=True)
        .distinct()
    )
    return np.fromiter(ids, dtype=np.int64)


def _take(
    user: User,
    ids: list[int],
    distances: np.ndarray,
    lesion_id: int,
    count: int,
    found: dict[int, SimilarCase],
) -> None:
    """Add the confirmed ones among candidates `ids` (nearest first) to `found`, one per
    lesion, until it holds `count`."""
    candidates = _candidates(user, ids, lesion_id)
    for analysis_id, distance in zip(ids, distances, strict=True):
        if len(found) == count:
            return
        candidate = candidates.get(analysis_id)
        if candidate is None or candidate.image.lesion_id in found:
            continue
        confirmed = _confirmed(candidate)
        if confirmed is None:
            continue
        code, label, source = confirmed
        found[candidate.image.lesion_id] = SimilarCase(
            analysis=candidate,
            distance=max(0.0, float(distance)),
            diagnosis=code,
            diagnosis_label=label,
            confirmed_by=source,
        )


def similar_cases(
    *, user: User, analysis: Analysis, count: int = SIMILAR_COUNT
) -> list[SimilarCase] | None:
    """The `count` confirmed cases of the user's clinic nearest to `analysis` (which the caller
    fetched through a clinic-scoped selector), nearest first; None when the analysis has no
    embedding (not finished, or a model without one) so there is nothing to compare.

    The nearest FIRST_CANDIDATES images are checked first; when fewer than `count` of them are
    confirmed cases of other lesions, the search goes on among the clinic's confirmed cases
    only, nearest first, until it has `count` or there are no more."""
    if not is_clinic_member(user) or analysis.image.lesion.patient.clinic_id != user.clinic_id:
        return None
    own = ImageEmbedding.objects.filter(analysis=analysis).first()
    if own is None:
        return None
    query = np.frombuffer(bytes(own.vector), dtype="<f4")
    index = clinic_index(user.clinic_id, own.space, len(query))
    lesion_id = analysis.image.lesion_id
    found: dict[int, SimilarCase] = {}  # lesion id -> its nearest confirmed image
    rows, distances = nearest(index.matrix, query, FIRST_CANDIDATES)
    _take(user, [int(index.analysis_ids[r]) for r in rows], distances, lesion_id, count, found)
    if len(found) < count and len(index.analysis_ids) > FIRST_CANDIDATES:
        subset = np.flatnonzero(np.isin(index.analysis_ids, _confirmed_ids(user)))
        order, subset_distances = nearest(index.matrix[subset], query, len(subset))
        for start in range(0, len(order), 200):
            chunk = subset[order[start : start + 200]]
            ids = [int(index.analysis_ids[row]) for row in chunk]
            _take(user, ids, subset_distances[start : start + 200], lesion_id, count, found)
            if len(found) == count:
                break
    return sorted(found.values(), key=lambda case: case.distance)
