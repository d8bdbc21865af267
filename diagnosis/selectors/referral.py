"""Reads of referrals, scoped to the user's clinic. Whether a referral is overdue is decided
here, on the day of the read (open and past its due date), never stored."""

from __future__ import annotations

import datetime

from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from accounts.permissions import is_clinic_member
from diagnosis.models import Analysis, Referral, ReferralStatus

# The referrals page's filters and the API's ?status=, in the order the page shows them.
OPEN, OVERDUE, CLOSED = "open", "overdue", "closed"
REFERRAL_FILTERS: dict[str, str] = {OPEN: "Open", OVERDUE: "Overdue", CLOSED: "Closed"}


def _overdue(today: datetime.date) -> Q:
    return Q(status=ReferralStatus.OPEN, due_on__lt=today)


def referral_list(
    *, user: User, status: str | None = None, today: datetime.date | None = None
) -> QuerySet[Referral]:
    """The clinic's referrals, soonest due first, each annotated `is_overdue`, with what a list
    row shows in one query. `status` is one of REFERRAL_FILTERS ("open" includes overdue ones);
    None gives them all."""
    if not is_clinic_member(user):
        return Referral.objects.none()
    today = today or timezone.localdate()
    referrals = (
        # By the analysis's own clinic (indexed), not the lesion's patient's, two joins away.
        Referral.objects.filter(analysis__clinic_id=user.clinic_id)
        .select_related("lesion__patient", "analysis", "histopathology", "created_by")
        .annotate(is_overdue=ExpressionWrapper(_overdue(today), output_field=BooleanField()))
        .order_by("due_on", "id")
    )
    if status == OPEN:
        referrals = referrals.filter(status=ReferralStatus.OPEN)
    elif status == OVERDUE:
        referrals = referrals.filter(_overdue(today))
    elif status == CLOSED:
        referrals = referrals.filter(status=ReferralStatus.CLOSED)
    elif status is not None:
        raise ValueError(f"unknown referral filter {status!r}")
    return referrals


def referral_get(*, user: User, referral_id: int, today: datetime.date | None = None) -> Referral:
    try:
        return referral_list(user=user, today=today).get(pk=referral_id)
    except Referral.DoesNotExist:
        raise Http404("No such referral.") from None


def overdue_referral_count(*, user: User, today: datetime.date | None = None) -> int:
    """How many of the clinic's referrals are open past their due date (the dashboard tile)."""
    return referral_list(user=user, status=OVERDUE, today=today).count()


def referrals_for_analysis(*, user: User, analysis: Analysis) -> list[Referral]:
    """The referrals an analysis's signed reviews opened, newest first, for its pages."""
    return list(referral_list(user=user).filter(analysis=analysis).order_by("-created_at", "-id"))
