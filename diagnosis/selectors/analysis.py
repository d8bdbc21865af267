"""Reads of analyses, always scoped to the user's clinic: lists, the live queue, the dashboard."""

from __future__ import annotations

import datetime

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
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
    return Analysis.objects.filter(clinic_id=user.clinic_id).select_related(
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
    return queue_positions([analysis]).get(analysis.pk)


def queue_positions(analyses: list[Analysis]) -> dict[int, int]:
    """queue_position of each of `analyses` that is waiting, by id, in one query whatever
    their number (the dashboard's queue shows twenty): a queued analysis's position is one
    more than the number queued before it."""
    waiting = [a for a in analyses if a.status == AnalysisStatus.QUEUED]
    if not waiting:
        return {}
    ahead = Analysis.objects.filter(status=AnalysisStatus.QUEUED).aggregate(
        **{str(a.pk): Count("pk", filter=Q(queued_at__lt=a.queued_at)) for a in waiting}
    )
    return {a.pk: ahead[str(a.pk)] + 1 for a in waiting}


def live_queue(*, user: User) -> QuerySet[Analysis]:
    return (
        analysis_list(user=user)
        .filter(status__in=[AnalysisStatus.QUEUED, AnalysisStatus.RUNNING])
        .order_by("queued_at", "id")
    )


def _queued_on(day: datetime.date) -> Q:
    """Queued on the clinic's local `day`, as a range of moments: `queued_at__date=day` casts
    every row's timestamp to a date, which no index can serve."""
    start, end = (
        timezone.make_aware(datetime.datetime.combine(d, datetime.time.min))
        for d in (day, day + datetime.timedelta(days=1))
    )
    return Q(queued_at__gte=start, queued_at__lt=end)


def dashboard_counts(*, user: User, today: datetime.date | None = None) -> dict[str, int]:
    from patients.selectors import patient_list

    today = today or timezone.localdate()
    # Three queries for the six tiles: each count is the size of the list its tile opens
    # (analyses_shown, awaiting_review), counted side by side over the same rows.
    tiles = analysis_list(user=user).aggregate(
        analyses_today=Count("pk", filter=_queued_on(today)),
        queued=Count("pk", filter=Q(status__in=[AnalysisStatus.QUEUED, AnalysisStatus.RUNNING])),
        failed=Count("pk", filter=Q(status=AnalysisStatus.FAILED)),
    )
    # Urgent results are among the not-routine ones (TRIAGE_SELECTIONS).
    awaiting = awaiting_review(user=user, triage="not_routine").aggregate(
        # The tile keeps its key; since triage it counts urgent results (melanoma suspected).
        high_risk_awaiting_review=Count("pk", filter=TRIAGE_SELECTIONS["urgent"]),
        not_routine_awaiting_review=Count("pk"),
    )
    return {"patients": patient_list(user=user).count(), **tiles, **awaiting}


def awaiting_review(*, user: User, triage: str | None = "urgent") -> QuerySet[Analysis]:
    """Finished results that no doctor has signed a review of yet (nor covered by the review
    of their visit's latest image), at the triage `triage` names ("urgent" or "not_routine",
    TRIAGE_SELECTIONS; None: every level), most urgent then longest waiting first: what the
    dashboard's tile counts and its list shows, and the worklist."""
    at_triage = TRIAGE_SELECTIONS[triage] if triage is not None else Q()
    return (
        analysis_list(user=user)
        .filter(at_triage, status=AnalysisStatus.DONE, covered_by__isnull=True)
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
        return analyses.filter(_queued_on(today or timezone.localdate()))
    if show == "queued":
        return analyses.filter(status__in=[AnalysisStatus.QUEUED, AnalysisStatus.RUNNING])
    if show == "failed":
        return analyses.filter(status=AnalysisStatus.FAILED)
    return analyses
