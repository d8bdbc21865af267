"""The shadow version's run on an upload: after the served result is stored (the same worker
task, so staff never wait for it), the version in shadow looks at the same image and its
result is stored apart (ShadowResult), for the comparison page alone.

Nothing a person reads about a patient (the analysis page, the worklist, the PDF, the API,
FHIR) reads ShadowResult; a shadow version that fails or is slow changes nothing about the
served analysis.
"""

from __future__ import annotations

import logging
import time

from django.db import IntegrityError, transaction

from diagnosis.models import (
    Analysis,
    AnalysisStatus,
    ModelStatus,
    ShadowResult,
    ShadowStatus,
)
from diagnosis.selectors.model_version import version_with_status

logger = logging.getLogger(__name__)
# The served outcomes a shadow version is compared with: a prediction, or the gate's refusal.
FINISHED_WITH_IMAGE = (AnalysisStatus.DONE, AnalysisStatus.NOT_ANALYSED)


def _store(analysis: Analysis, version, **fields) -> ShadowResult:
    try:
        with transaction.atomic():
            return ShadowResult.objects.create(analysis=analysis, model_version=version, **fields)
    except IntegrityError:
        # An earlier delivery of the same task stored it already: keep the first.
        return ShadowResult.objects.get(analysis=analysis, model_version=version)


def shadow_run(*, analysis_id: int) -> ShadowResult | None:
    """Run the version in shadow (if any) on a finished analysis's image and store its
    result; None when there is no shadow version or nothing to run on. Safe to run twice:
    one result per analysis and version.

    The shadow version's own image gate runs as the served one's would (skipped for an
    analysis a doctor overrode); heatmaps are not computed, since nobody sees them.
    """
    from diagnosis.classifier import gate_for, get_shadow_classifier
    from diagnosis.services.image import _open_image
    from diagnosis.services.lesion import lesion_metadata
    from ml.served import ClassifierNotInstalled

    version = version_with_status(ModelStatus.SHADOW)
    if version is None:
        return None
    analysis = (
        Analysis.objects.select_related("image__lesion__patient").filter(pk=analysis_id).first()
    )
    if analysis is None or analysis.status not in FINISHED_WITH_IMAGE:
        return None
    existing = ShadowResult.objects.filter(analysis=analysis, model_version=version).first()
    if existing is not None:
        return existing
    try:
        classifier = get_shadow_classifier(version.version)
    except (ClassifierNotInstalled, ValueError) as error:
        logger.warning("shadow version %s could not be loaded: %s", version.version, error)
        return _store(
            analysis, version, status=ShadowStatus.FAILED, failure_reason=str(error)[:200]
        )
    image = _open_image(analysis.image)
    if image is None:
        return _store(
            analysis,
            version,
            status=ShadowStatus.FAILED,
            failure_reason="The stored image could not be read.",
        )
    timings: dict[str, float] = {}
    gate = None if analysis.is_overridden else gate_for(classifier)
    if gate is not None:
        began = time.perf_counter()
        verdict = gate.check(image)
        timings["gate"] = round((time.perf_counter() - began) * 1000, 1)
        if not verdict.accepted:
            return _store(
                analysis,
                version,
                status=ShadowStatus.NOT_ANALYSED,
                gate_reason=verdict.reason or "refused",
                timings_ms=timings,
            )
    prediction = classifier.predict(image, lesion_metadata(analysis.image))
    timings |= {step: round(ms, 1) for step, ms in prediction.timings_ms.items()}
    triage = prediction.triage
    return _store(
        analysis,
        version,
        status=ShadowStatus.DONE,
        probabilities=prediction.probabilities,
        top_class=prediction.top_class,
        melanoma_probability=prediction.melanoma_probability,
        risk_tier=prediction.risk_tier,
        triage_level=triage.level if triage is not None else "",
        timings_ms=timings,
    )
