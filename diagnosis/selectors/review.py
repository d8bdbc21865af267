"""Reads of reviews and the doctor's worklist, scoped to the user's clinic, each in a fixed
number of queries."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from accounts.models import User
from diagnosis.models import (
    Analysis,
    AnalysisStatus,
    Review,
)
from diagnosis.selectors.analysis import analysis_list, high_risk_awaiting_review, triage_rank


def worklist(*, user: User) -> QuerySet[Analysis]:
    """Finished analyses of the clinic that no doctor has signed: urgent first, then soon,
    then routine (a result from before triage by its melanoma risk tier: high with urgent,
    moderate with soon, low with routine), and within a level the oldest first (longest
    waiting).

    Two queries whatever the length: the analyses with their image, lesion and patient, and
    their unsigned drafts (so the list can say "draft by Dr X").
    """
    return (
        analysis_list(user=user)
        .filter(status=AnalysisStatus.DONE)
        .exclude(reviews__signed_at__isnull=False)
        .annotate(triage_rank=triage_rank())
        .order_by("triage_rank", "queued_at", "id")
        .prefetch_related(
            Prefetch(
                "reviews",
                queryset=Review.objects.filter(signed_at__isnull=True).select_related("author"),
                to_attr="drafts",
            )
        )
    )


def high_risk_worklist(*, user: User) -> QuerySet[Analysis]:
    """The worklist narrowed to exactly what the dashboard's "high risk awaiting review" tile
    counts: the tile's own selector decides, so the number and the list cannot disagree."""
    return worklist(user=user).filter(pk__in=high_risk_awaiting_review(user=user).values("pk"))


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
    return Review.objects.filter(
        analysis__in=analysis_list(user=user).values("pk"), signed_at__isnull=False
    ).order_by("-signed_at", "-id")
