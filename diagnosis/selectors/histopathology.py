"""Reads of histopathology results and how the AI and the doctors agree with them, scoped to
the user's clinic.

The agreement page counts per reviewed analysis: every finished analysis of a lesion with a
histology result that a doctor has signed a review of is one case, judged for the AI (its
suggestion and risk tier) and for the doctor (the current signed review), so both columns count
the same cases. Analyses with histology that nobody has reviewed yet are counted apart. Each
number is the size of one named list of cases (CASE_LISTS), and the page links every number to
its list, so a figure can always be traced to the patients behind it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db.models import Prefetch
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
    """One finished analysis of a lesion with a histology result, and the doctor's current
    signed review of that analysis (None when not reviewed). `analysis` (not compared) carries
    the patient and lesion for the lists of cases."""

    analysis_id: int
    lesion_id: int
    histology: str
    ai_top_class: str
    ai_risk_tier: str
    doctor_diagnosis: str | None = None
    doctor_management: str | None = None
    analysis: Analysis | None = field(default=None, compare=False, repr=False)
    review: Review | None = field(default=None, compare=False, repr=False)

    @property
    def is_reviewed(self) -> bool:
        return self.doctor_diagnosis is not None

    @property
    def is_melanoma(self) -> bool:
        return self.histology == MELANOMA


# A doctor "acts on" a melanoma by excising it or referring it urgently; a soon referral is
# too slow for one.
ACTING = frozenset({Management.EXCISE, Management.REFER_URGENTLY})


@dataclass(frozen=True)
class CaseList:
    """A named set of cases: the page shows its size, and links to it (?list=<key>)."""

    title: str
    includes: Callable[[HistologyCase], bool]


def _reviewed_melanoma(case: HistologyCase) -> bool:
    return case.is_reviewed and case.is_melanoma


CASE_LISTS: dict[str, CaseList] = {
    "reviewed": CaseList("Reviewed analyses with a histology result", lambda c: c.is_reviewed),
    "unreviewed": CaseList(
        "Analyses with a histology result not reviewed yet (not counted)",
        lambda c: not c.is_reviewed,
    ),
    "melanomas": CaseList(
        "Reviewed analyses of histologically confirmed melanomas", _reviewed_melanoma
    ),
    "ai_agreement": CaseList(
        "The AI's suggestion agrees with histology",
        lambda c: c.is_reviewed and c.ai_top_class == c.histology,
    ),
    "doctor_agreement": CaseList(
        "The doctor's diagnosis agrees with histology",
        lambda c: c.is_reviewed and c.doctor_diagnosis == c.histology,
    ),
    "ai_mel_top": CaseList(
        "Melanomas the AI named as its suggestion",
        lambda c: _reviewed_melanoma(c) and c.ai_top_class == MELANOMA,
    ),
    "ai_mel_high": CaseList(
        "Melanomas the AI put in the high risk tier",
        lambda c: _reviewed_melanoma(c) and c.ai_risk_tier == RiskTier.HIGH,
    ),
    "ai_mel_moderate_or_high": CaseList(
        "Melanomas the AI put in the moderate or high risk tier",
        lambda c: _reviewed_melanoma(c) and c.ai_risk_tier in (RiskTier.HIGH, RiskTier.MODERATE),
    ),
    "doctor_mel_diagnosis": CaseList(
        "Melanomas the doctor diagnosed as melanoma",
        lambda c: _reviewed_melanoma(c) and c.doctor_diagnosis == MELANOMA,
    ),
    "doctor_mel_action": CaseList(
        "Melanomas the doctor excised or referred urgently",
        lambda c: _reviewed_melanoma(c) and c.doctor_management in ACTING,
    ),
}


@dataclass(frozen=True)
class Rate:
    """`count` of `total` cases; `cases` and `of` name the CASE_LISTS they are the sizes of."""

    count: int
    total: int
    cases: str = ""
    of: str = ""

    @property
    def percent(self) -> float | None:
        return round(100 * self.count / self.total, 1) if self.total else None


@dataclass(frozen=True)
class AgreementSummary:
    cases: int  # reviewed analyses with histology: what every rate below counts
    unreviewed: int
    melanomas: int
    ai_agreement: Rate
    doctor_agreement: Rate
    # Sensitivity for melanoma: of the histologically confirmed melanomas, how many were caught.
    ai_mel_sensitivity_top_class: Rate
    ai_mel_sensitivity_high_tier: Rate
    ai_mel_sensitivity_moderate_or_high: Rate
    doctor_mel_sensitivity_diagnosis: Rate
    doctor_mel_sensitivity_action: Rate


def histology_cases(*, user: User) -> list[HistologyCase]:
    """Every finished analysis of the clinic's lesions with histology, each with its current
    signed review, newest lesion first. Two queries: the analyses (with their patient, lesion
    and histology joined), and their signed reviews."""
    analyses = (
        analysis_list(user=user)
        .filter(status=AnalysisStatus.DONE, image__lesion__histopathology__isnull=False)
        .select_related("image__lesion__histopathology")
        .order_by("-image__lesion_id", "-queued_at", "-id")
        .prefetch_related(
            Prefetch(
                "reviews",
                queryset=Review.objects.filter(signed_at__isnull=False).order_by("-version"),
                to_attr="signed_reviews",
            )
        )
    )
    cases = []
    for analysis in analyses:
        lesion = analysis.image.lesion
        review = analysis.signed_reviews[0] if analysis.signed_reviews else None
        cases.append(
            HistologyCase(
                analysis_id=analysis.pk,
                lesion_id=lesion.pk,
                histology=lesion.histopathology.diagnosis,
                ai_top_class=analysis.top_class,
                ai_risk_tier=analysis.risk_tier,
                doctor_diagnosis=review.diagnosis if review else None,
                doctor_management=review.management if review else None,
                analysis=analysis,
                review=review,
            )
        )
    return cases


def case_list(cases: Iterable[HistologyCase], key: str) -> list[HistologyCase]:
    """The cases in the named list; KeyError for a name CASE_LISTS does not know."""
    includes = CASE_LISTS[key].includes
    return [case for case in cases if includes(case)]


def agreement_summary(cases: Iterable[HistologyCase]) -> AgreementSummary:
    """Agreement of the AI and of the doctors with histology over the reviewed cases.

    The AI "catches" a melanoma by naming it its top class, or by its risk tier; a doctor by
    diagnosing melanoma, or (what matters to the patient) by excising or referring urgently.
    Every number is the length of a CASE_LISTS list, the same lists the page links to.
    """
    cases = list(cases)

    def rate(caught: str, of: str) -> Rate:
        return Rate(len(case_list(cases, caught)), len(case_list(cases, of)), caught, of)

    return AgreementSummary(
        cases=len(case_list(cases, "reviewed")),
        unreviewed=len(case_list(cases, "unreviewed")),
        melanomas=len(case_list(cases, "melanomas")),
        ai_agreement=rate("ai_agreement", "reviewed"),
        doctor_agreement=rate("doctor_agreement", "reviewed"),
        ai_mel_sensitivity_top_class=rate("ai_mel_top", "melanomas"),
        ai_mel_sensitivity_high_tier=rate("ai_mel_high", "melanomas"),
        ai_mel_sensitivity_moderate_or_high=rate("ai_mel_moderate_or_high", "melanomas"),
        doctor_mel_sensitivity_diagnosis=rate("doctor_mel_diagnosis", "melanomas"),
        doctor_mel_sensitivity_action=rate("doctor_mel_action", "melanomas"),
    )
