"""Reads of reviews and the doctor's worklist, scoped to the user's clinic, each in a fixed
number of queries."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from accounts.models import User
from accounts.permissions import is_clinic_member
from diagnosis import presentation
from diagnosis.models import (
    Analysis,
    AnalysisStatus,
    Lesion,
    Review,
)
from diagnosis.selectors.analysis import awaiting_review


def worklist(*, user: User, triage: str | None = None) -> QuerySet[Analysis]:
    """Finished analyses of the clinic that no doctor has signed (only those at `triage` when
    given, as awaiting_review selects): urgent first, then soon, then routine (a result from
    before triage by its melanoma risk tier: high with urgent, moderate with soon, low with
    routine), and within a level the oldest first (longest waiting).

    Two queries whatever the length: the analyses with their image, lesion and patient, and
    their unsigned drafts (so the list can say "draft by Dr X"). Results covered by the signed
    review of their visit's latest image (review by lesion) are not on it.
    """
    return awaiting_review(user=user, triage=triage).prefetch_related(
        Prefetch(
            "reviews",
            queryset=Review.objects.filter(signed_at__isnull=True).select_related("author"),
            to_attr="drafts",
        )
    )


def high_risk_worklist(*, user: User) -> QuerySet[Analysis]:
    """The worklist narrowed to exactly what the dashboard's "high risk awaiting review" tile
    counts: the tile's own selection (high_risk_awaiting_review) decides, so the number and the
    list cannot disagree."""
    return worklist(user=user, triage="urgent")


@dataclass(frozen=True)
class LesionGroup:
    """The worklist's row of one lesion: its results awaiting review, the newest first."""

    lesion: Lesion
    analyses: list[Analysis]  # newest image first
    change: presentation.TriageChange | None  # since the last visit, over all its results

    @property
    def latest(self) -> Analysis:
        return self.analyses[0]

    @property
    def older(self) -> list[Analysis]:
        return self.analyses[1:]

    @property
    def level(self) -> str:
        """The most urgent level of the lesion's waiting results: where the row is placed."""
        return presentation.most_urgent(
            presentation.result_level(a.triage_level, a.risk_tier) for a in self.analyses
        )

    @property
    def latest_level(self) -> str:
        return presentation.result_level(self.latest.triage_level, self.latest.risk_tier)

    @property
    def same_visit_older(self) -> list[Analysis]:
        """The older waiting results of the newest one's visit: what review by lesion covers."""
        day = self.latest.image.visit_date
        return [a for a in self.older if a.image.visit_date == day and not a.drafts]


def worklist_lesions(*, user: User, high_risk_only: bool = False) -> tuple[list[int], int]:
    """The ids of the lesions on the worklist in its order (each placed by its most urgent
    waiting result, then the longest waiting) and how many results await review: one query
    of two columns, so a page of the worklist fetches the rest for its own lesions only (a
    clinic network's worklist holds hundreds of lesions)."""
    analyses = high_risk_worklist(user=user) if high_risk_only else worklist(user=user)
    rows = analyses.prefetch_related(None).values_list("image__lesion_id", flat=True)
    lesion_ids = list(dict.fromkeys(rows))
    return lesion_ids, len(rows)


def worklist_by_lesion(
    *, user: User, high_risk_only: bool = False, lesion_ids: list[int] | None = None
) -> list[LesionGroup]:
    """The worklist grouped by lesion: one row per lesion, placed by its most urgent waiting
    result (then the longest waiting), showing its newest image first with the older ones
    behind it, and whether the lesion's triage changed since the last visit; only the lesions
    `lesion_ids` names (a page of worklist_lesions) when given. Three queries: the worklist's
    two and the lesions' earlier results for the change."""
    analyses = high_risk_worklist(user=user) if high_risk_only else worklist(user=user)
    if lesion_ids is not None:
        analyses = analyses.filter(image__lesion_id__in=lesion_ids)
    analyses = list(analyses)
    groups: dict[int, list[Analysis]] = {}
    for analysis in analyses:  # most urgent, then longest waiting, first
        groups.setdefault(analysis.image.lesion_id, []).append(analysis)
    history: dict[int, list[tuple]] = {}
    rows = (
        Analysis.objects.filter(image__lesion_id__in=list(groups), status=AnalysisStatus.DONE)
        .order_by("image__uploaded_at", "image_id")
        .values_list("image__lesion_id", "image__uploaded_at", "triage_level", "risk_tier")
    )
    for lesion_id, uploaded_at, triage_level, risk_tier in rows:
        level = presentation.result_level(triage_level, risk_tier)
        history.setdefault(lesion_id, []).append((timezone.localdate(uploaded_at), level))
    return [
        LesionGroup(
            lesion=members[0].image.lesion,
            analyses=sorted(members, key=lambda a: (a.image.uploaded_at, a.image_id), reverse=True),
            change=presentation.triage_change(history.get(lesion_id, [])),
        )
        for lesion_id, members in groups.items()
    ]


def review_versions(*, analysis: Analysis) -> list[Review]:
    """Every version of the analysis's review, newest first (the first is the current one).
    The caller has already fetched `analysis` through a clinic-scoped selector."""
    return list(
        Review.objects.filter(analysis=analysis)
        .select_related("author", "signed_by")
        .order_by("-version")
    )


def current_review(*, analysis: Analysis) -> Review | None:
    """The newest version (a draft or signed), or None when nobody has reviewed it yet."""
    return (
        Review.objects.filter(analysis=analysis)
        .select_related("author", "signed_by")
        .order_by("-version")
        .first()
    )


def current_signed_review(*, analysis: Analysis) -> Review | None:
    """The newest signed version: what a report prints as the doctor's decision."""
    return (
        Review.objects.filter(analysis=analysis, signed_at__isnull=False)
        .select_related("signed_by")
        .order_by("-version")
        .first()
    )


def signed_reviews(*, user: User) -> QuerySet[Review]:
    """Signed reviews of the user's clinic's analyses. A draft is a doctor's work in progress,
    not a clinical statement, so the API never shows one."""
    if not is_clinic_member(user):
        return Review.objects.none()
    return Review.objects.filter(
        analysis__clinic_id=user.clinic_id, signed_at__isnull=False
    ).order_by("-signed_at", "-id")
