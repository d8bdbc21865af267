"""Reads of reviews, the doctor's worklist and the histopathology agreement, scoped to the
user's clinic, each in a fixed number of queries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Case, IntegerField, Prefetch, QuerySet, Value, When
from django.http import Http404

from accounts.models import User
from accounts.permissions import is_clinic_member
from diagnosis.models import (
    Analysis,
    AnalysisStatus,
    DiagnosisChoice,
    Histopathology,
    Lesion,
    Management,
    Review,
    RiskTier,
)
from diagnosis.selectors import analysis_list

MELANOMA = DiagnosisChoice.MEL.value


def worklist(*, user: User) -> QuerySet[Analysis]:
    """Finished analyses of the clinic that no doctor has signed: high risk first, then
    moderate, then low, and within a tier the oldest first (longest waiting).

    Two queries whatever the length: the analyses with their image, lesion and patient, and
    their unsigned drafts (so the list can say "draft by Dr X").
    """
    risk_rank = Case(
        When(risk_tier=RiskTier.HIGH, then=Value(0)),
        When(risk_tier=RiskTier.MODERATE, then=Value(1)),
        When(risk_tier=RiskTier.LOW, then=Value(2)),
        default=Value(3),
        output_field=IntegerField(),
    )
    return (
        analysis_list(user=user)
        .filter(status=AnalysisStatus.DONE)
        .exclude(reviews__signed_at__isnull=False)
        .annotate(risk_rank=risk_rank)
        .order_by("risk_rank", "queued_at", "id")
        .prefetch_related(
            Prefetch(
                "reviews",
                queryset=Review.objects.filter(signed_at__isnull=True).select_related("author"),
                to_attr="drafts",
            )
        )
    )


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


def lesion_histopathology(*, user: User, lesion_id: int) -> tuple[Lesion, Histopathology | None]:
    if not is_clinic_member(user):
        raise Http404("No such lesion.")
    try:
        lesion = Lesion.objects.select_related("patient").get(
            pk=lesion_id, patient__clinic_id=user.clinic_id
        )
    except Lesion.DoesNotExist:
        raise Http404("No such lesion.") from None
    return lesion, Histopathology.objects.filter(lesion=lesion).first()


@dataclass(frozen=True)
class HistologyCase:
    """One lesion with a histology result, the AI's latest finished analysis of it, and the
    doctor's signed decision on that analysis (None when not reviewed)."""

    lesion_id: int
    histology: str
    ai_top_class: str
    ai_risk_tier: str
    doctor_diagnosis: str | None = None
    doctor_management: str | None = None


@dataclass(frozen=True)
class Rate:
    count: int
    total: int

    @property
    def percent(self) -> float | None:
        return round(100 * self.count / self.total, 1) if self.total else None


@dataclass(frozen=True)
class AgreementSummary:
    cases: int
    reviewed_cases: int
    melanomas: int
    reviewed_melanomas: int
    ai_agreement: Rate
    doctor_agreement: Rate
    # Sensitivity for melanoma: of the histologically confirmed melanomas, how many were caught.
    ai_mel_sensitivity_top_class: Rate
    ai_mel_sensitivity_high_tier: Rate
    ai_mel_sensitivity_moderate_or_high: Rate
    doctor_mel_sensitivity_diagnosis: Rate
    doctor_mel_sensitivity_action: Rate


def histology_cases(*, user: User) -> list[HistologyCase]:
    """The clinic's lesions with histology, each paired with its newest finished analysis.

    Two queries: the finished analyses of those lesions (with the histology joined), and their
    signed reviews.
    """
    analyses = (
        analysis_list(user=user)
        .filter(status=AnalysisStatus.DONE, image__lesion__histopathology__isnull=False)
        .select_related("image__lesion__histopathology")
        .order_by("image__lesion_id", "-queued_at", "-id")
        .prefetch_related(
            Prefetch(
                "reviews",
                queryset=Review.objects.filter(signed_at__isnull=False).order_by("-version"),
                to_attr="signed_reviews",
            )
        )
    )
    cases: dict[int, HistologyCase] = {}
    for analysis in analyses:
        lesion = analysis.image.lesion
        if lesion.pk in cases:
            continue  # an older analysis of a lesion already counted
        review = analysis.signed_reviews[0] if analysis.signed_reviews else None
        cases[lesion.pk] = HistologyCase(
            lesion_id=lesion.pk,
            histology=lesion.histopathology.diagnosis,
            ai_top_class=analysis.top_class,
            ai_risk_tier=analysis.risk_tier,
            doctor_diagnosis=review.diagnosis if review else None,
            doctor_management=review.management if review else None,
        )
    return list(cases.values())


def agreement_summary(cases: Iterable[HistologyCase]) -> AgreementSummary:
    """Agreement of the AI and of the doctors with histology over `cases`.

    The AI "catches" a melanoma by naming it its top class, or by its risk tier; a doctor by
    diagnosing melanoma, or (what matters to the patient) by excising or referring urgently.
    """
    cases = list(cases)
    reviewed = [case for case in cases if case.doctor_diagnosis is not None]
    melanomas = [case for case in cases if case.histology == MELANOMA]
    reviewed_melanomas = [case for case in melanomas if case.doctor_diagnosis is not None]
    acting = {Management.EXCISE, Management.REFER_URGENTLY}

    def rate(subset: list[HistologyCase], caught) -> Rate:
        return Rate(sum(1 for case in subset if caught(case)), len(subset))

    return AgreementSummary(
        cases=len(cases),
        reviewed_cases=len(reviewed),
        melanomas=len(melanomas),
        reviewed_melanomas=len(reviewed_melanomas),
        ai_agreement=rate(cases, lambda c: c.ai_top_class == c.histology),
        doctor_agreement=rate(reviewed, lambda c: c.doctor_diagnosis == c.histology),
        ai_mel_sensitivity_top_class=rate(melanomas, lambda c: c.ai_top_class == MELANOMA),
        ai_mel_sensitivity_high_tier=rate(melanomas, lambda c: c.ai_risk_tier == RiskTier.HIGH),
        ai_mel_sensitivity_moderate_or_high=rate(
            melanomas, lambda c: c.ai_risk_tier in (RiskTier.HIGH, RiskTier.MODERATE)
        ),
        doctor_mel_sensitivity_diagnosis=rate(
            reviewed_melanomas, lambda c: c.doctor_diagnosis == MELANOMA
        ),
        doctor_mel_sensitivity_action=rate(
            reviewed_melanomas, lambda c: c.doctor_management in acting
        ),
    )
