"""Reads of the model registry: which version is served and which runs in shadow, the local
validation set (the clinic's confirmed cases), the promotion gate's verdict, and how a shadow
version compares with the served one on the clinic's uploads."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.db.models import Q

from accounts.models import User
from accounts.permissions import is_clinic_member
from diagnosis.models import (
    AnalysisStatus,
    DermoscopicImage,
    DiagnosisChoice,
    DriftReport,
    Histopathology,
    ModelEvaluation,
    ModelStatus,
    ModelVersion,
    Review,
    ShadowResult,
    ShadowStatus,
)
from ml.classes import CLASSES

MELANOMA = DiagnosisChoice.MEL.value
HISTOPATHOLOGY = "histopathology"
SIGNED_REVIEW = "signed review"


def version_with_status(status: str) -> ModelVersion | None:
    return ModelVersion.objects.filter(status=status).first()


def active_version_name() -> str | None:
    """The registry's active version; None before any is registered (or while none is)."""
    return (
        ModelVersion.objects.filter(status=ModelStatus.ACTIVE)
        .values_list("version", flat=True)
        .first()
    )


def shadow_version_name() -> str | None:
    return (
        ModelVersion.objects.filter(status=ModelStatus.SHADOW)
        .values_list("version", flat=True)
        .first()
    )


# --- The local validation set ---------------------------------------------------------------


@dataclass(frozen=True)
class LabelledCase:
    """A dermoscopic image whose lesion's diagnosis is confirmed: by histology, or, where no
    histology exists, by a doctor's signed review (marked as such)."""

    image: DermoscopicImage
    lesion_id: int
    label: str  # a class code of ml.classes.CLASSES
    source: str  # HISTOPATHOLOGY or SIGNED_REVIEW


@dataclass
class LocalCases:
    cases: list[LabelledCase]
    # Confirmed images left out, by why: the original no longer kept, a diagnosis outside the
    # classifier's seven classes.
    skipped: dict[str, int] = field(default_factory=dict)
    clinic_id: int | None = None

    @property
    def n_melanomas(self) -> int:
        return sum(case.label == MELANOMA for case in self.cases)

    @property
    def by_source(self) -> dict[str, int]:
        return dict(Counter(case.source for case in self.cases))

    def summary(self) -> dict:
        return {
            "n_images": len(self.cases),
            "n_lesions": len({case.lesion_id for case in self.cases}),
            "n_melanoma": self.n_melanomas,
            "by_source": self.by_source,
            "by_label": {code: sum(c.label == code for c in self.cases) for code in CLASSES},
            "skipped": self.skipped,
            "clinic_id": self.clinic_id,
        }


def local_validation_cases(*, clinic_id: int | None = None) -> LocalCases:
    """Every stored image of a lesion with a confirmed diagnosis, of one clinic or of all.

    Histology is the reference wherever it exists; otherwise the diagnosis of the image's most
    recently signed review stands in. A diagnosis outside the seven classes ("other") cannot
    be scored against the classifier and is counted apart, as is an image whose original was
    deleted under the clinic's retention period. Three queries, whatever the size."""
    images = DermoscopicImage.objects.filter(
        Q(lesion__histopathology__isnull=False) | Q(analyses__reviews__signed_at__isnull=False)
    )
    if clinic_id is not None:
        images = images.filter(lesion__patient__clinic_id=clinic_id)
    images = list(images.distinct().select_related("lesion__patient").order_by("pk"))
    lesion_ids = {image.lesion_id for image in images}
    histology = dict(
        Histopathology.objects.filter(lesion_id__in=lesion_ids).values_list(
            "lesion_id", "diagnosis"
        )
    )
    reviewed: dict[int, str] = {}
    for image_id, diagnosis in (
        Review.objects.filter(
            signed_at__isnull=False, analysis__image_id__in=[image.pk for image in images]
        )
        .order_by("signed_at", "pk")
        .values_list("analysis__image_id", "diagnosis")
    ):
        reviewed[image_id] = diagnosis  # the latest signed one wins
    cases, skipped = [], Counter()
    for image in images:
        if image.lesion_id in histology:
            label, source = histology[image.lesion_id], HISTOPATHOLOGY
        else:
            label, source = reviewed[image.pk], SIGNED_REVIEW
        if label not in CLASSES:
            skipped["diagnosis outside the seven classes"] += 1
        elif not image.file or image.original_deleted_at is not None:
            skipped["image no longer kept"] += 1
        else:
            cases.append(LabelledCase(image, image.lesion_id, label, source))
    return LocalCases(cases, dict(skipped), clinic_id)


# --- The promotion gate ---------------------------------------------------------------------


@dataclass(frozen=True)
class GateCheck:
    name: str
    candidate: float | None
    active: float | None
    must_reach: float | None
    passed: bool
    rule: str


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    # "local": the clinic's confirmed cases; "shipped": the cards' validation figures;
    # "first": nothing active to compare with.
    basis: str
    basis_words: str
    checks: tuple[GateCheck, ...] = ()
    refusal: str = ""
    active_version: str = ""
    evaluation_id: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _value(figures: dict, name: str) -> float | None:
    return (figures.get(name) or {}).get("value")


def _checks(candidate: dict, active: dict) -> tuple[GateCheck, ...]:
    """The two rules: melanoma sensitivity at the triage boundary not below the active
    version's lower confidence bound, and balanced accuracy not below the active version's."""
    sensitivity_c = _value(candidate, "melanoma_sensitivity")
    sensitivity_a = _value(active, "melanoma_sensitivity")
    interval = (active.get("melanoma_sensitivity") or {}).get("ci95")
    floor = interval[0] if interval else sensitivity_a
    balanced_c = _value(candidate, "balanced_accuracy")
    balanced_a = _value(active, "balanced_accuracy")

    def at_least(value: float | None, bound: float | None) -> bool:
        # Figures are stored rounded to 4 places; equal counts as not lower.
        return value is not None and bound is not None and value >= bound - 1e-9

    return (
        GateCheck(
            "Melanoma sensitivity at the triage boundary",
            sensitivity_c,
            sensitivity_a,
            floor,
            at_least(sensitivity_c, floor),
            "not lower than the active version's, beyond its 95% confidence interval",
        ),
        GateCheck(
            "Balanced accuracy",
            balanced_c,
            balanced_a,
            balanced_a,
            at_least(balanced_c, balanced_a),
            "not lower than the active version's",
        ),
    )


def _percent(value: float | None) -> str:
    return "unknown" if value is None else f"{100 * value:.1f}%"


def _refusal(candidate: str, active: str, checks: tuple[GateCheck, ...], basis: str) -> str:
    failed = [
        f"{check.name.lower()} {_percent(check.candidate)} is below "
        f"{_percent(check.must_reach)} ({check.rule}: {active} has {_percent(check.active)})"
        for check in checks
        if not check.passed
    ]
    return f"{candidate} does not pass the gate {basis}: " + "; ".join(failed) + "."


def promotion_gate(candidate: ModelVersion) -> GateDecision:
    """Whether `candidate` may replace the active version, and on what evidence.

    On the local validation set once it holds MODEL_GATE_MIN_MELANOMAS melanomas (all
    clinics' confirmed cases: the model is shared), from the candidate's latest local
    evaluation beside the version active now; below that, on each version's shipped
    validation figures, and the decision says so."""
    active = version_with_status(ModelStatus.ACTIVE)
    if active is None:
        return GateDecision(True, "first", "No version is active: nothing to compare with.")
    if active.pk == candidate.pk:
        return GateDecision(
            False, "first", "", refusal=f"{candidate.version} is the active version already."
        )
    minimum = settings.MODEL_GATE_MIN_MELANOMAS
    melanomas = local_validation_cases().n_melanomas
    if melanomas >= minimum:
        evaluation = (
            ModelEvaluation.objects.filter(model_version=candidate, compared_with=active.version)
            .order_by("-created_at", "-id")
            .first()
        )
        words = f"on the clinic's confirmed cases ({melanomas} melanomas)"
        if evaluation is None or evaluation.n_melanomas < minimum:
            return GateDecision(
                False,
                "local",
                words,
                refusal=(
                    f"Evaluate {candidate.version} on the local cases first (manage.py "
                    f"model_evaluate {candidate.version}, or Evaluate in the admin): the gate "
                    f"compares it with {active.version} on the clinic's {melanomas} confirmed "
                    "melanomas, and no evaluation beside that version on them exists yet."
                ),
                active_version=active.version,
            )
        report = evaluation.report
        checks = _checks(report["candidate"], report["active"])
        words = (
            f"on the clinic's confirmed cases: evaluation of "
            f"{evaluation.created_at:%d %b %Y}, {evaluation.n_cases} images, "
            f"{evaluation.n_melanomas} melanomas"
        )
        passed = all(check.passed for check in checks)
        return GateDecision(
            passed,
            "local",
            words,
            checks,
            "" if passed else _refusal(candidate.version, active.version, checks, words),
            active.version,
            evaluation.pk,
        )
    words = (
        f"on each version's shipped validation figures, because the clinic's confirmed cases "
        f"hold {melanomas} melanoma{'s' if melanomas != 1 else ''}, fewer than the "
        f"{minimum} a local comparison needs"
    )
    missing = [v.version for v in (candidate, active) if not v.validation]
    if missing:
        return GateDecision(
            False,
            "shipped",
            words,
            refusal=(
                f"{' and '.join(missing)} ship{'s' if len(missing) == 1 else ''} no validation "
                f"figures in the card, and the clinic's confirmed cases hold {melanomas} "
                f"melanomas (fewer than {minimum}): there is nothing to measure the promotion by."
            ),
            active_version=active.version,
        )
    checks = _checks(candidate.validation, active.validation)
    passed = all(check.passed for check in checks)
    return GateDecision(
        passed,
        "shipped",
        words,
        checks,
        "" if passed else _refusal(candidate.version, active.version, checks, words),
        active.version,
    )


# --- Shadow comparison ----------------------------------------------------------------------

# Triage levels in order; a result of a model without triage (v1) by its melanoma risk tier,
# which the same boundaries set (as diagnosis.selectors.analysis does for old results).
LEVEL_RANK = {"routine": 0, "soon": 1, "urgent": 2}
TIER_RANK = {"low": 0, "moderate": 1, "high": 2}
TIMED_STEPS = ("gate", "preprocess", "inference")


def triage_rank_of(triage_level: str, risk_tier: str) -> int | None:
    """0 routine, 1 soon, 2 urgent; None for a result with neither."""
    if triage_level:
        return LEVEL_RANK.get(triage_level)
    return TIER_RANK.get(risk_tier)


def _ms(timings: dict | None) -> float | None:
    if not timings or "inference" not in timings:
        return None
    return sum(float(timings.get(step, 0.0)) for step in TIMED_STEPS)


@dataclass
class ShadowComparison:
    """How a shadow version's results compare with the served results of the same uploads."""

    version: str
    status: str
    results: int = 0  # analyses the shadow version ran on
    compared: int = 0  # both gave a prediction
    agree: int = 0  # the same suggested class
    moved_up: int = 0  # the shadow's triage higher (e.g. routine -> soon)
    moved_down: int = 0
    same_level: int = 0
    moves: dict[str, int] = field(default_factory=dict)  # "routine -> soon": n
    shadow_refused: int = 0  # its image gate refused an image the served model analysed
    shadow_analysed_refused: int = 0  # it analysed an image the served gate refused
    failed: int = 0
    served_ms: float | None = None  # mean per image: gate, preprocessing and network
    shadow_ms: float | None = None

    @property
    def agreement_percent(self) -> float | None:
        return round(100 * self.agree / self.compared, 1) if self.compared else None


def _compare(results) -> list[ShadowComparison]:
    by_version: dict[str, ShadowComparison] = {}
    served_ms: dict[str, list[float]] = {}
    shadow_ms: dict[str, list[float]] = {}
    for result in results:
        version = result.model_version
        row = by_version.setdefault(
            version.version, ShadowComparison(version.version, version.get_status_display())
        )
        analysis = result.analysis
        row.results += 1
        if result.status == ShadowStatus.FAILED:
            row.failed += 1
            continue
        served_done = analysis.status == AnalysisStatus.DONE
        shadow_done = result.status == ShadowStatus.DONE
        if served_done and not shadow_done:
            row.shadow_refused += 1
        if shadow_done and analysis.status == AnalysisStatus.NOT_ANALYSED:
            row.shadow_analysed_refused += 1
        if not (served_done and shadow_done):
            continue
        row.compared += 1
        row.agree += result.top_class == analysis.top_class
        served = triage_rank_of(analysis.triage_level, analysis.risk_tier)
        shadow = triage_rank_of(result.triage_level, result.risk_tier)
        if served is not None and shadow is not None:
            if shadow > served:
                row.moved_up += 1
            elif shadow < served:
                row.moved_down += 1
            else:
                row.same_level += 1
            if shadow != served:
                names = list(LEVEL_RANK)
                move = f"{names[served]} -> {names[shadow]}"
                row.moves[move] = row.moves.get(move, 0) + 1
        for store, timings in ((served_ms, analysis.timings_ms), (shadow_ms, result.timings_ms)):
            ms = _ms(timings)
            if ms is not None:
                store.setdefault(version.version, []).append(ms)
    for name, row in by_version.items():
        if served_ms.get(name):
            row.served_ms = round(sum(served_ms[name]) / len(served_ms[name]), 1)
        if shadow_ms.get(name):
            row.shadow_ms = round(sum(shadow_ms[name]) / len(shadow_ms[name]), 1)
    return sorted(by_version.values(), key=lambda row: row.version)


def shadow_comparison(*, user: User) -> list[ShadowComparison]:
    """Per shadow version, its results on the user's clinic's uploads against the served
    results (counts only, no patient named). Two queries' worth of rows, one query."""
    if not is_clinic_member(user):
        return []
    results = ShadowResult.objects.filter(analysis__clinic_id=user.clinic_id).select_related(
        "analysis", "model_version"
    )
    return _compare(results)


def shadow_comparison_all_clinics(*, model_version: ModelVersion | None = None):
    """The same over every clinic, for the Django admin (superusers)."""
    results = ShadowResult.objects.select_related("analysis", "model_version")
    if model_version is not None:
        results = results.filter(model_version=model_version)
    return _compare(results)


def latest_drift_report(*, user: User) -> DriftReport | None:
    """The clinic's most recent drift report, for its admins' dashboard; None for others."""
    if not is_clinic_member(user) or not user.is_clinic_admin:
        return None
    return DriftReport.objects.filter(clinic_id=user.clinic_id).order_by("-period_end").first()
