"""Reads of histopathology results and how the AI and the doctors agree with them, scoped to
the user's clinic."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Prefetch
from django.http import Http404

from accounts.models import User
from accounts.permissions import is_clinic_member
from diagnosis.models import (
    AnalysisStatus,
    DiagnosisChoice,
    Histopathology,
    Lesion,
    Management,
    Review,
    RiskTier,
)
from diagnosis.selectors.analysis import analysis_list

MELANOMA = DiagnosisChoice.MEL.value


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
