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
from django.db.models import Q

from accounts.models import User
from accounts.permissions import is_clinic_member
from diagnosis.models import Analysis, AnalysisStatus, DiagnosisChoice, ImageEmbedding, Review
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
    return ImageEmbedding.objects.filter(clinic_id=clinic_id, space=space).order_by("pk")


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


def _label(code: str, other: str) -> str:
    if code == DiagnosisChoice.OTHER:
        return f"Other: {other}"
    return DiagnosisChoice(code).label if code in DiagnosisChoice.values else code


def _confirmations(user: User, ids: list[int], lesion_id: int) -> dict[int, tuple]:
    """For each candidate that is a confirmed case of another lesion of the user's clinic:
    (lesion id, diagnosis code, label, "histology" | "review"). Two light queries, values
    only: the nearest candidates are many, the cases shown five."""
    rows = (
        analysis_list(user=user)
        .filter(pk__in=ids, status=AnalysisStatus.DONE, overridden_at__isnull=True)
        .exclude(image__lesion_id=lesion_id)
        .values_list(
            "pk",
            "image__lesion_id",
            "image__lesion__histopathology__diagnosis",
            "image__lesion__histopathology__diagnosis_other",
            "covered_by__signed_at",
            "covered_by__diagnosis",
            "covered_by__diagnosis_other",
        )
    )
    reviews: dict[int, tuple[str, str]] = {}
    signed = (
        Review.objects.filter(analysis_id__in=ids, signed_at__isnull=False)
        .order_by("analysis_id", "version")
        .values_list("analysis_id", "diagnosis", "diagnosis_other")
    )
    for analysis_id, code, other in signed:
        reviews[analysis_id] = (code, other)  # the newest signed version last
    out = {}
    for pk, lesion, histology, histology_other, covered_at, covered, covered_other in rows:
        if histology:
            out[pk] = (lesion, histology, _label(histology, histology_other), "histology")
        elif pk in reviews:
            code, other = reviews[pk]
            out[pk] = (lesion, code, _label(code, other), "review")
        elif covered_at is not None and covered:
            out[pk] = (lesion, covered, _label(covered, covered_other), "review")
    return out


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


@dataclass(frozen=True)
class _Found:
    analysis_id: int
    distance: float
    diagnosis: str
    label: str
    source: str


def _take(
    user: User,
    ids: list[int],
    distances: np.ndarray,
    lesion_id: int,
    count: int,
    found: dict[int, _Found],
) -> None:
    """Add the confirmed ones among candidates `ids` (nearest first) to `found` (by lesion),
    one per lesion, until it holds `count`."""
    confirmed = _confirmations(user, ids, lesion_id)
    for analysis_id, distance in zip(ids, distances, strict=True):
        if len(found) == count:
            return
        if analysis_id not in confirmed:
            continue
        lesion, code, label, source = confirmed[analysis_id]
        if lesion not in found:
            found[lesion] = _Found(analysis_id, max(0.0, float(distance)), code, label, source)


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
    found: dict[int, _Found] = {}  # lesion id -> its nearest confirmed image
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
    chosen = sorted(found.values(), key=lambda case: case.distance)
    shown = analysis_list(user=user).in_bulk([case.analysis_id for case in chosen])
    return [
        SimilarCase(
            analysis=shown[case.analysis_id],
            distance=case.distance,
            diagnosis=case.diagnosis,
            diagnosis_label=case.label,
            confirmed_by=case.source,
        )
        for case in chosen
        if case.analysis_id in shown
    ]
