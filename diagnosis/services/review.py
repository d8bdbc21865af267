"""Writes of doctors' reviews.

Only doctors write a review; a review is signed once and then locked. Changing a signed
review means amending it: a new version that supersedes the old one, which is kept
unchanged, so the record shows what was decided when. Signing a decision to refer opens the
referral in the same transaction (diagnosis.services.referral).
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record, audited_write
from accounts.models import Role, User
from accounts.permissions import require_role, require_same_clinic
from diagnosis import presentation
from diagnosis.models import (
    REFERRING_DECISIONS,
    Analysis,
    AnalysisStatus,
    DiagnosisChoice,
    Management,
    Review,
)
from diagnosis.services.referral import DESTINATION_MISSING, referral_open

REVIEW_FIELDS = (
    "agrees_with_ai",
    "diagnosis",
    "diagnosis_other",
    "management",
    "follow_up_on",
    "referral_to",
    "notes",
)


class ReviewLocked(ValidationError):
    """The review is signed; it can only be amended, never edited."""


def _check_fields(fields: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = set(fields) - set(allowed)
    if unknown:
        raise TypeError(f"unknown fields: {sorted(unknown)}")


def agreement_conflict(*, agrees_with_ai: bool, diagnosis: str, ai_suggestion: str) -> str | None:
    """Why "I agree with the AI" cannot go with this diagnosis, or None when it can.

    Agreeing while naming a different diagnosis is refused, not merely confirmed: the review
    would say two contradictory things, and the agreement figures (histology agreement page)
    would count a disagreement as agreement. A doctor who half agrees (same risk, another
    diagnosis) answers "No" and says so in the notes. With no AI suggestion (no result) there
    is nothing to contradict.
    """
    if not agrees_with_ai or not ai_suggestion or diagnosis == ai_suggestion:
        return None
    mine = DiagnosisChoice(diagnosis).label if diagnosis in DiagnosisChoice.values else diagnosis
    return (
        f"You said you agree with the AI, but your diagnosis ({mine}) is not the AI's "
        f'suggestion ({presentation.class_name(ai_suggestion)}). Choose "No, I disagree", or '
        "change your diagnosis."
    )


def review_rule_errors(
    *,
    management: str | None,
    follow_up_on: datetime.date | None,
    diagnosis: str | None,
    diagnosis_other: str = "",
    referral_to: str = "",
    agrees_with_ai: bool | None = None,
    ai_suggestion: str = "",
    new_follow_up: bool = True,
) -> dict[str, str]:
    """The rules of a review, field by field: the one place they are written. The service
    refuses a review that breaks one, and the review form shows them next to its fields before
    the service is called (None: a field the form could not read, checked no further).

    A follow-up date being written (`new_follow_up`) must lie in the future: a date that has
    passed since a draft was saved does not stop the draft being signed."""
    errors: dict[str, str] = {}
    if management == Management.MONITOR and follow_up_on is None:
        errors["follow_up_on"] = "Monitoring needs a follow-up date."
    elif (
        new_follow_up and management == Management.MONITOR and follow_up_on <= timezone.localdate()
    ):
        errors["follow_up_on"] = "The follow-up date must be in the future."
    if diagnosis == DiagnosisChoice.OTHER and not (diagnosis_other or "").strip():
        errors["diagnosis_other"] = "Name the diagnosis when choosing 'Other'."
    if management in REFERRING_DECISIONS and not (referral_to or "").strip():
        errors["referral_to"] = DESTINATION_MISSING
    if agrees_with_ai is not None and diagnosis:
        conflict = agreement_conflict(
            agrees_with_ai=agrees_with_ai, diagnosis=diagnosis, ai_suggestion=ai_suggestion
        )
        if conflict:
            errors["agrees_with_ai"] = conflict
    return errors


def _clean_review(review: Review, *, new_follow_up: bool = True) -> None:
    """Refuse a review that breaks a rule (review_rule_errors; the database enforces most of
    them a third time), and drop what its decision does not use."""
    errors = review_rule_errors(
        management=review.management,
        follow_up_on=review.follow_up_on,
        diagnosis=review.diagnosis,
        diagnosis_other=review.diagnosis_other,
        referral_to=review.referral_to,
        agrees_with_ai=review.agrees_with_ai,
        ai_suggestion=review.analysis.top_class,
        new_follow_up=new_follow_up,
    )
    if review.diagnosis != DiagnosisChoice.OTHER:
        review.diagnosis_other = ""
    if review.management != Management.MONITOR:
        review.follow_up_on = None
    review.referral_to = (
        review.referral_to.strip() if review.management in REFERRING_DECISIONS else ""
    )
    if errors:
        raise ValidationError(errors)
    review.full_clean(exclude=["analysis", "supersedes", "author", "signed_by"])


def _lock_analysis(actor: User, analysis: Analysis) -> Analysis:
    """Lock the analysis row: review writes of one analysis happen one at a time."""
    require_role(actor, Role.DOCTOR)
    locked = (
        Analysis.objects.select_for_update()
        .select_related("image__lesion__patient")
        .get(pk=analysis.pk)
    )
    require_same_clinic(actor, locked.image.lesion.patient.clinic_id)
    if locked.status != AnalysisStatus.DONE:
        raise ValidationError("Only a finished analysis can be reviewed.")
    return locked


def _latest(analysis: Analysis) -> Review | None:
    return Review.objects.filter(analysis=analysis).order_by("-version").first()


def _sign(review: Review, actor: User) -> None:
    review.signed_at = timezone.now()
    review.signed_by = actor
    review.signed_by_name = actor.get_full_name()


def _save_audited(
    review: Review, *, actor: User, request, sign: bool, action: str, **detail: Any
) -> None:
    """Save a review (signed first when asked) and record the write, then the signature, as
    separate audit events: an auditor filters on 'review.sign' to find every signature. A
    signed referring decision opens its referral (its own event, 'referral.create')."""
    if sign:
        _sign(review, actor)
    review.save()
    audit_record(
        action=action, user=actor, request=request, obj=review, version=review.version, **detail
    )
    if sign:
        audit_record(
            action="review.sign", user=actor, request=request, obj=review, version=review.version
        )
        referral_open(actor=actor, review=review, request=request)


@audited_write("review.create", "review.update")
def review_save(
    *,
    actor: User,
    analysis: Analysis,
    sign: bool = False,
    request=None,
    **fields: Any,
) -> Review:
    """Create the first review of an analysis or update its unsigned draft; sign it when
    `sign` is true. Raises ReviewLocked when the current version is signed (amend instead)."""
    _check_fields(fields, REVIEW_FIELDS)
    with transaction.atomic():
        analysis = _lock_analysis(actor, analysis)
        review = _latest(analysis)
        if review is not None and review.is_signed:
            raise ReviewLocked("This review is signed and locked; amend it to change it.")
        created = review is None
        if created:
            review = Review(analysis=analysis, version=1, author=actor)
        for name, value in fields.items():
            setattr(review, name, value)
        _clean_review(review, new_follow_up="follow_up_on" in fields)
        _save_audited(
            review,
            actor=actor,
            request=request,
            sign=sign,
            action="review.create" if created else "review.update",
        )
    return review


@audited_write("review.sign")
def review_sign(*, actor: User, review: Review, request=None) -> Review:
    """Sign a draft. Only doctors sign; signing twice is refused, not repeated."""
    with transaction.atomic():
        _lock_analysis(actor, review.analysis)
        review = Review.objects.select_for_update().get(pk=review.pk)
        if review.is_signed:
            raise ReviewLocked("This review is already signed.")
        _clean_review(review, new_follow_up=False)
        _sign(review, actor)
        review.save(update_fields=["signed_at", "signed_by", "signed_by_name", "updated_at"])
        audit_record(
            action="review.sign", user=actor, request=request, obj=review, version=review.version
        )
        referral_open(actor=actor, review=review, request=request)
    return review


@audited_write("review.amend")
def review_amend(
    *,
    actor: User,
    analysis: Analysis,
    amendment_reason: str,
    sign: bool = False,
    request=None,
    **fields: Any,
) -> Review:
    """Start (or sign) a new version superseding the signed current one; the old stays."""
    _check_fields(fields, REVIEW_FIELDS)
    if not amendment_reason.strip():
        raise ValidationError({"amendment_reason": "Say why the signed review is amended."})
    with transaction.atomic():
        analysis = _lock_analysis(actor, analysis)
        previous = _latest(analysis)
        if previous is None or not previous.is_signed:
            raise ValidationError("Only a signed review can be amended; edit the draft instead.")
        review = Review(
            analysis=analysis,
            version=previous.version + 1,
            supersedes=previous,
            author=actor,
            amendment_reason=amendment_reason.strip(),
            **{name: getattr(previous, name) for name in REVIEW_FIELDS},
        )
        for name, value in fields.items():
            setattr(review, name, value)
        _clean_review(review, new_follow_up="follow_up_on" in fields)
        _save_audited(
            review,
            actor=actor,
            request=request,
            sign=sign,
            action="review.amend",
            supersedes=previous.pk,
        )
    return review


# --- Review by lesion ----------------------------------------------------------------------

COVER_NEEDS_SIGNATURE = "Only a signed review can cover other images; sign it first."


def _cover_refusal(candidate: Analysis, reviewed: Analysis) -> str | None:
    """Why `candidate` cannot be covered by a review of `reviewed`, or None when it can: it must
    be an older finished result of the same lesion from the same visit (day) that nobody has
    reviewed, drafted or covered."""
    name = f"The image uploaded {timezone.localtime(candidate.image.uploaded_at):%d %b %Y %H:%M}"
    if candidate.image.lesion_id != reviewed.image.lesion_id:
        return f"{name} shows another lesion."
    if candidate.pk == reviewed.pk:
        return f"{name} is the one reviewed."
    if candidate.status != AnalysisStatus.DONE:
        return f"{name} has no result yet."
    if candidate.image.visit_date != reviewed.image.visit_date:
        return f"{name} is from another visit; it needs its own review."
    if (candidate.image.uploaded_at, candidate.image_id) > (
        reviewed.image.uploaded_at,
        reviewed.image_id,
    ):
        return f"{name} is newer than the image reviewed; review the newest image."
    if candidate.covered_by_id is not None:
        return f"{name} is already covered by a review."
    reviews = list(candidate.reviews.all())
    if any(review.is_signed for review in reviews):
        return f"{name} has a signed review of its own."
    if reviews:
        return f"{name} has a draft review; finish it or review it separately."
    return None


@audited_write("review.cover")
def review_cover(
    *, actor: User, review: Review, analyses: list[Analysis], request=None
) -> list[Analysis]:
    """Mark older unreviewed results of the same lesion and visit as covered by a signed
    review of the visit's latest image: they leave the worklist, and their pages name the
    review that covers them. One audit event names every analysis covered. Refuses the lot,
    changing nothing, if any one cannot be covered (the message says which and why)."""
    require_role(actor, Role.DOCTOR)
    if not analyses:
        raise ValidationError("Choose at least one image to cover.")
    with transaction.atomic():
        reviewed = _lock_analysis(actor, review.analysis)
        review = Review.objects.get(pk=review.pk)
        if not review.is_signed:
            raise ValidationError(COVER_NEEDS_SIGNATURE)
        locked = list(
            Analysis.objects.select_for_update(of=("self",))
            .select_related("image__lesion__patient")
            .prefetch_related("reviews")
            .filter(pk__in=[analysis.pk for analysis in analyses])
            .order_by("pk")
        )
        if len(locked) != len({analysis.pk for analysis in analyses}):
            raise ValidationError("An image chosen to cover no longer exists.")
        refusals = [why for why in (_cover_refusal(a, reviewed) for a in locked) if why]
        if refusals:
            raise ValidationError(refusals)
        for analysis in locked:
            analysis.covered_by = review
            analysis.save(update_fields=["covered_by"])
        audit_record(
            action="review.cover",
            user=actor,
            request=request,
            obj=review,
            covered=[analysis.pk for analysis in locked],
        )
    return locked


def review_sign_covering(
    *,
    actor: User,
    analysis: Analysis,
    cover: list[Analysis],
    request=None,
    **fields: Any,
) -> Review:
    """Review by lesion, in one step: sign the review of the lesion's latest image (a new
    review, or the draft completed) and mark `cover`, older images of the same visit, as
    covered by it. One transaction: if any image cannot be covered, nothing is signed. Audited
    as the two writes it is made of (review_save, review_cover)."""
    with transaction.atomic():
        review = review_save(actor=actor, analysis=analysis, sign=True, request=request, **fields)
        if cover:
            review_cover(actor=actor, review=review, analyses=cover, request=request)
    return review
