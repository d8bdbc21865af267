"""Reads of analyses, always scoped to the user's clinic: lists, the live queue, the dashboard."""

from __future__ import annotations

import datetime

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from accounts.permissions import is_clinic_member
from diagnosis.models import Analysis, AnalysisStatus, RiskTier


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
        "high_risk_awaiting_review": high_risk_awaiting_review(user=user).count(),
    }


def high_risk_awaiting_review(*, user: User) -> QuerySet[Analysis]:
    """High-risk results that no doctor has signed a review of yet."""
    return (
        analysis_list(user=user)
        .filter(status=AnalysisStatus.DONE, risk_tier=RiskTier.HIGH)
        .exclude(reviews__signed_at__isnull=False)
    )


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
