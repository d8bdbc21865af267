"""The weekly drift watch: per clinic and served version, the week's triage mix, gate refusals
and mean melanoma probability against the version's validation figures (ml.drift), stored as a
DriftReport that the clinic admin's dashboard flags when something shifted."""

from __future__ import annotations

import datetime
from collections import defaultdict

from django.db import IntegrityError, transaction
from django.utils import timezone

from diagnosis.models import Analysis, AnalysisStatus, DriftReport, ModelVersion
from diagnosis.selectors.model_version import LEVEL_RANK, triage_rank_of

WEEK = datetime.timedelta(days=7)


def _observed(analyses: list[Analysis]) -> dict:
    done = [a for a in analyses if a.status == AnalysisStatus.DONE and not a.is_overridden]
    refused = sum(a.status == AnalysisStatus.NOT_ANALYSED for a in analyses)
    levels = list(LEVEL_RANK)
    ranked = [triage_rank_of(a.triage_level, a.risk_tier) for a in done]
    ranked = [rank for rank in ranked if rank is not None]
    mel = [a.melanoma_probability for a in done if a.melanoma_probability is not None]
    return {
        "n": len(analyses),
        "with_result": len(done),
        "overridden": sum(a.is_overridden for a in analyses),
        "gate_refused": round(refused / len(analyses), 4) if analyses else None,
        "triage": (
            {level: round(ranked.count(i) / len(ranked), 4) for i, level in enumerate(levels)}
            if ranked
            else None
        ),
        "mean_melanoma_probability": round(sum(mel) / len(mel), 4) if mel else None,
    }


def drift_reports_compute(*, now: datetime.datetime | None = None) -> int:
    """One report per clinic and served version for the week ending `now` (default: now), of
    the analyses that finished in it. Versions the registry does not know (no card) are left
    out. Safe to run twice: the second finds its reports made. Returns how many it made."""
    from ml.drift import expected, shifts

    end = now or timezone.now()
    start = end - WEEK
    analyses = Analysis.objects.filter(
        finished_at__gte=start,
        finished_at__lt=end,
        status__in=[AnalysisStatus.DONE, AnalysisStatus.NOT_ANALYSED],
    ).select_related("image__lesion__patient")
    groups: dict[tuple[int, str], list[Analysis]] = defaultdict(list)
    for analysis in analyses:
        groups[(analysis.image.lesion.patient.clinic_id, analysis.model_version)].append(analysis)
    registered = {
        version: (card, gate)
        for version, card, gate in ModelVersion.objects.filter(
            version__in={version for _, version in groups}
        ).values_list("version", "card", "gate_measured")
    }
    made = 0
    for (clinic_id, version), members in sorted(groups.items()):
        if version not in registered:
            continue
        card, gate = registered[version]
        observed = _observed(members)
        figures = expected(card, {"measured": gate} if gate else None)
        try:
            with transaction.atomic():
                DriftReport.objects.create(
                    clinic_id=clinic_id,
                    model_version=version,
                    period_start=start,
                    period_end=end,
                    n_analyses=len(members),
                    observed=observed,
                    expected=figures,
                    shifts=shifts(observed, figures),
                )
        except IntegrityError:
            continue
        made += 1
    return made
