"""Reads of analyses, always scoped to the user's clinic: lists, the live queue, the dashboard."""

from __future__ import annotations

import datetime

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from accounts.permissions import is_clinic_member
from diagnosis.models import Analysis, AnalysisStatus, RiskTier, TriageLevel

# A result's triage, and for a result stored before triage existed (no triage_level) the
# melanoma risk tier it was given, which the same boundaries set: high ~ urgent, moderate ~
# soon, low ~ routine. Old results keep what they were given; they are not re-triaged.
URGENT = Q(triage_level=TriageLevel.URGENT) | Q(triage_level="", risk_tier=RiskTier.HIGH)
SOON = Q(triage_level=TriageLevel.SOON) | Q(triage_level="", risk_tier=RiskTier.MODERATE)
ROUTINE = Q(triage_level=TriageLevel.ROUTINE) | Q(triage_level="", risk_tier=RiskTier.LOW)
# What the dashboard's tiles and their lists select: "urgent" (melanoma suspected) or
# "not_routine" (urgent or soon: every suspected skin cancer).
TRIAGE_SELECTIONS: dict[str, Q] = {"urgent": URGENT, "not_routine": URGENT | SOON}


def triage_rank() -> Case:
    """0 urgent, 1 soon, 2 routine, 3 none (an expression to annotate and order by)."""
    return Case(
        When(URGENT, then=Value(0)),
        When(SOON, then=Value(1)),
        When(ROUTINE, then=Value(2)),
        default=Value(3),
        output_field=IntegerField(),
    )


def analysis_list(*, user: User) -> QuerySet[Analysis]:
    """The clinic's analyses with what a list row shows, in one query."""
    if not is_clinic_member(user):
        return Analysis.objects.none()
    return Analysis.objects.filter(image__lesion__patient__clinic_id=user.clinic_id).select_related(
        "image__lesion__patient", "image__uploaded_by"
    )


def analysis_get(*, user: User, analysis_id: int) -> Analysis:
    try:
        return analysis_list(user=user).get(pk=analysis_id)
    except Analysis.DoesNotExist:
        raise Http404("No such analysis.") from None


def analyses_for_patient(*, user: User, patient_id: int) -> QuerySet[Analysis]:
    return analysis_list(user=user).filter(image__lesion__patient_id=patient_id)


def queue_position(*, analysis: Analysis) -> int | None:
    """1 for the next analysis a worker takes; None once it is no longer waiting.

    Counted over every clinic (workers are shared), which reveals only a number.
    """
    if analysis.status != AnalysisStatus.QUEUED:
        return None
    ahead = Analysis.objects.filter(
        status=AnalysisStatus.QUEUED, queued_at__lt=analysis.queued_at
    ).count()
    return ahead + 1


def live_queue(*, user: User) -> QuerySet[Analysis]:
    return (
        analysis_list(user=user)
        .filter(status__in=[AnalysisStatus.QUEUED, AnalysisStatus.RUNNING])
        .order_by("queued_at", "id")
    )


def dashboard_counts(*, user: User, today: datetime.date | None = None) -> dict[str, int]:
    from patients.selectors import patient_list

    today = today or timezone.localdate()
    analyses = analysis_list(user=user)
    return {
        "patients": patient_list(user=user).count(),
        "analyses_today": analyses.filter(queued_at__date=today).count(),
        "queued": analyses.filter(
            status__in=[AnalysisStatus.QUEUED, AnalysisStatus.RUNNING]
        ).count(),
        "failed": analyses.filter(status=AnalysisStatus.FAILED).count(),
        # The tile keeps its key; since triage it counts urgent results (melanoma suspected).
        "high_risk_awaiting_review": awaiting_review(user=user, triage="urgent").count(),
        "not_routine_awaiting_review": awaiting_review(user=user, triage="not_routine").count(),
    }


def awaiting_review(*, user: User, triage: str = "urgent") -> QuerySet[Analysis]:
    """Finished results that no doctor has signed a review of yet (nor covered by the review
    of their visit's latest image), at the triage `triage` names ("urgent" or "not_routine",
    TRIAGE_SELECTIONS), most urgent then longest waiting first: what the dashboard's tile
    counts and its list shows."""
    return (
        analysis_list(user=user)
        .filter(TRIAGE_SELECTIONS[triage], status=AnalysisStatus.DONE, covered_by__isnull=True)
        .exclude(reviews__signed_at__isnull=False)
        .annotate(triage_rank=triage_rank())
        .order_by("triage_rank", "queued_at", "id")
    )


def high_risk_awaiting_review(*, user: User) -> QuerySet[Analysis]:
    """Urgent results (melanoma suspected; before triage, the high melanoma tier) that no
    doctor has signed a review of yet: the dashboard tile."""
    return awaiting_review(user=user, triage="urgent")


# The dashboard's tiles, each opening the analyses it counts (diagnosis.views.analysis).
ANALYSIS_LISTS = {
    "today": "Analyses today",
    "queued": "Queued or running",
    "failed": "Failed analyses",
    "all": "All analyses",
}


def analyses_shown(
    *, user: User, show: str, today: datetime.date | None = None
) -> QuerySet[Analysis]:
    """The clinic's analyses a dashboard tile counts (`show`, one of ANALYSIS_LISTS), newest
    first; exactly what dashboard_counts counts, so a tile's number and its list agree."""
    analyses = analysis_list(user=user).order_by("-queued_at", "-id")
    if show == "today":
        return analyses.filter(queued_at__date=today or timezone.localdate())
    if show == "queued":
        return analyses.filter(status__in=[AnalysisStatus.QUEUED, AnalysisStatus.RUNNING])
    if show == "failed":
        return analyses.filter(status=AnalysisStatus.FAILED)
    return analyses
