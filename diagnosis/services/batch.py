"""The worker's job, in batches: claim an analysis with up to N-1 others waiting in the queue,
gate and classify them together (one pass through the network), and store each result in its
own transaction, so that one bad image never costs the others theirs.

Why the database drains the queue, not the broker (celery-batches was weighed): the analysis
rows already say what waits, the claim below works the same on Redis, RabbitMQ and the
filesystem broker, each analysis keeps its own task, retries, failure message and audit of
attempts, and a lone upload runs at once (celery-batches flushes on a timer or a full buffer,
and acknowledges its buffered messages outside the task's own acks_late).

How a claim stays honest:
- the task's own analysis (the lead) is locked and claimed as it always was; the others are
  taken oldest first with SELECT ... FOR UPDATE SKIP LOCKED, so two workers draining at once
  never take the same one, and each is marked with the lead (`batch_lead`);
- their own tasks, delivered later, find them finished, or running in another's batch, and
  leave them alone;
- a lead delivered again while still `running` under its own claim (its worker died, or the
  task is being retried) runs alone and sends the rest of its batch back to the queue: an
  image that kills the worker takes no other analysis down with it a second time. Where no
  message comes back (a whole worker killed on the filesystem broker) the stale sweep re-sends
  each `running` analysis after the time limit, as for one.
"""

from __future__ import annotations

import io
import logging
import time
from typing import TYPE_CHECKING

from django.core.files.base import ContentFile
from django.db import OperationalError, transaction
from django.db.models import F, prefetch_related_objects
from django.utils import timezone

from diagnosis.models import Analysis, AnalysisStatus
from diagnosis.services.embedding import embedding_store, embeddings_of
from diagnosis.services.lesion import lesion_metadata

if TYPE_CHECKING:
    from PIL import Image

    from ml.gate import Gate, Verdict
    from ml.inference import Classifier
    from ml.served import Prediction

logger = logging.getLogger(__name__)

NO_CLASSIFIER = "No classifier installed: ask your administrator to install the trained model."
UNREADABLE = "The stored image could not be read; please upload it again."
# Words for staff, never an exception's class name; the worker's log keeps the details.
FAILED_UNEXPECTEDLY = (
    "The analysis failed unexpectedly; press Retry to queue it again. If it fails again, "
    "tell your administrator (the worker's log has the details)."
)
# The states a delivery of the task leaves alone: the analysis has its outcome already.
FINISHED = (AnalysisStatus.DONE, AnalysisStatus.FAILED, AnalysisStatus.NOT_ANALYSED)
# zlib level of the stored heatmap PNGs: 1 encodes a heatmap about 4x faster than Pillow's
# default 6 (2.4 against 11 ms for a sample) for a file about a fifth larger (31 against 26 KB);
# the pixels are the same, and the encoding was a fifth of a worker's time per analysis.
HEATMAP_PNG_COMPRESS_LEVEL = 1


def _enqueue(pks: list[int]) -> None:
    from diagnosis.services.analysis import _enqueue as enqueue_one

    for analysis in Analysis.objects.filter(pk__in=pks):
        enqueue_one(analysis)


def analysis_claim_batch(*, analysis_id: int, batch_size: int) -> list[Analysis]:
    """Claim the task's own analysis and up to `batch_size - 1` others waiting in the queue,
    lead first; [] when its own is finished, deleted, or running in another task's batch.

    The lead is claimed with a blocking lock, exactly as a lone analysis always was (a test
    hook pauses on that save); the others with one UPDATE that takes only rows still queued,
    so that even a database without SKIP LOCKED (SQLite) never gives one analysis to two."""
    with transaction.atomic():
        lead = Analysis.objects.select_for_update().filter(pk=analysis_id).first()
        if lead is None:
            return []
        if lead.status in FINISHED:
            # Finished by an earlier delivery, or in another's batch. When that delivery led a
            # batch and died after storing this one, the rest of it is still `running`: back
            # to the queue with it, rather than waiting for the sweep.
            if lead.batch_lead == lead.pk:
                _release_others(lead.pk)
            return []
        if lead.status == AnalysisStatus.RUNNING and lead.batch_lead not in (None, lead.pk):
            return []  # running in another task's batch; a crash there comes back by its lead
        crashed = lead.status == AnalysisStatus.RUNNING  # an earlier delivery died mid-run
        now = timezone.now()
        lead.status = AnalysisStatus.RUNNING
        lead.started_at = now
        lead.attempts += 1
        lead.batch_lead = lead.pk
        lead.save(update_fields=["status", "started_at", "attempts", "batch_lead"])
        if crashed:
            _release_others(lead.pk)
            return [lead]
        others: list[int] = []
        if batch_size > 1:
            waiting = (
                Analysis.objects.select_for_update(skip_locked=True)
                .filter(status=AnalysisStatus.QUEUED)
                .order_by("queued_at", "pk")
                .values_list("pk", flat=True)
            )
            others = list(waiting[: batch_size - 1])
        return [lead, *_take(others, lead=lead.pk, now=now)]


def analyses_claim(*, analysis_ids: list[int]) -> list[Analysis]:
    """Claim these analyses, those of them still queued, as one batch led by the first one
    claimed (the bulk re-analysis runs its own new analyses this way, in its own process)."""
    with transaction.atomic():
        pks = list(
            Analysis.objects.select_for_update(skip_locked=True)
            .filter(pk__in=analysis_ids, status=AnalysisStatus.QUEUED)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not pks:
            return []
        return _take(pks, lead=pks[0], now=timezone.now())


def _take(pks: list[int], *, lead: int, now) -> list[Analysis]:
    if not pks:
        return []
    Analysis.objects.filter(pk__in=pks, status=AnalysisStatus.QUEUED).update(
        status=AnalysisStatus.RUNNING, started_at=now, attempts=F("attempts") + 1, batch_lead=lead
    )
    taken = Analysis.objects.select_related("image").filter(
        pk__in=pks, status=AnalysisStatus.RUNNING, batch_lead=lead
    )
    return sorted(taken, key=lambda analysis: (analysis.queued_at, analysis.pk))


def _release_others(lead: int) -> list[int]:
    """Send the rest of a lead's batch back to the queue (inside the caller's transaction);
    their tasks are sent again once it commits."""
    pks = list(
        Analysis.objects.select_for_update()
        .filter(status=AnalysisStatus.RUNNING, batch_lead=lead)
        .exclude(pk=lead)
        .values_list("pk", flat=True)
    )
    if pks:
        Analysis.objects.filter(pk__in=pks).update(status=AnalysisStatus.QUEUED, batch_lead=None)
        transaction.on_commit(lambda: _enqueue(pks), robust=True)
        logger.warning(
            "analysis %s runs alone; the rest of its batch is queued again: %s", lead, pks
        )
    return pks


def analysis_release_batch(*, analysis_id: int) -> list[int]:
    """The rest of this lead's batch, unfinished, back to the queue (its task stopped at the
    time limit or failed outright); the ids sent again."""
    with transaction.atomic():
        return _release_others(analysis_id)


def analyses_run(analyses: list[Analysis]) -> list[Analysis]:
    """Run claimed analyses as one batch and store each outcome; returns them in the same
    order, as stored. Should the batch as a whole fail (one image that breaks the network's
    input, say), each is run again alone, so only the image at fault fails.

    A database too busy to answer, or the task's time running out, is raised: the task decides
    (it tries again, or fails the lead and sends the rest back to the queue)."""
    from celery.exceptions import SoftTimeLimitExceeded

    if not analyses:
        return []
    try:
        stored = _run_together(analyses)
    except (SoftTimeLimitExceeded, OperationalError):
        raise
    except Exception:
        if len(analyses) == 1:
            raise
        logger.exception("a batch of %d failed; running each alone", len(analyses))
        stored = {}
        for analysis in analyses:
            current = Analysis.objects.get(pk=analysis.pk)
            if current.status in FINISHED:
                stored[analysis.pk] = current
                continue
            try:
                stored |= _run_together([analysis])
            except (SoftTimeLimitExceeded, OperationalError):
                raise
            except Exception:
                logger.exception("analysis %s failed", analysis.pk)
                stored[analysis.pk] = _fail(analysis.pk, FAILED_UNEXPECTEDLY)
    return [stored[analysis.pk] for analysis in analyses]


def _fail(analysis_id: int, reason: str) -> Analysis:
    from diagnosis.services.analysis import analysis_fail

    return analysis_fail(analysis_id=analysis_id, reason=reason)


def _run_together(analyses: list[Analysis]) -> dict[int, Analysis]:
    from diagnosis.classifier import gate_for, get_classifier
    from diagnosis.services.image import image_for_analysis
    from ml.served import ClassifierNotInstalled

    size = len(analyses)
    started = time.perf_counter()
    # The lesion's metadata and the embedding's clinic for every analysis in three queries,
    # not three per analysis.
    prefetch_related_objects(analyses, "image__lesion__patient")
    try:
        classifier = get_classifier()
        # The gate of this classifier: asking get_gate() would ask the registry again.
        gate = None if all(a.is_overridden for a in analyses) else gate_for(classifier)
    except ClassifierNotInstalled:
        return {a.pk: _fail(a.pk, NO_CLASSIFIER) for a in analyses}
    load_ms = round((time.perf_counter() - started) * 1000, 1)
    stored: dict[int, Analysis] = {}
    readable: list[tuple[Analysis, Image.Image]] = []
    for analysis in analyses:
        picture = image_for_analysis(analysis.image)
        if picture is None:
            stored[analysis.pk] = _fail(analysis.pk, UNREADABLE)
        else:
            readable.append((analysis, picture))
    gated = [(a, p) for a, p in readable if gate is not None and not a.is_overridden]
    verdicts: dict[int, Verdict] = {}
    gate_ms = 0.0
    if gated:
        gate_started = time.perf_counter()
        found = gate.check_all([picture for _, picture in gated])
        gate_ms = round((time.perf_counter() - gate_started) * 1000 / len(gated), 1)
        verdicts = {a.pk: verdict for (a, _), verdict in zip(gated, found, strict=True)}
    accepted: list[tuple[Analysis, Image.Image, dict[str, float]]] = []
    for analysis, picture in readable:
        timings: dict[str, float] = {"batch_size": size}
        verdict = verdicts.get(analysis.pk)
        if verdict is not None:
            timings["gate"] = gate_ms
            if not verdict.accepted:
                stored[analysis.pk] = _store_refusal(analysis, verdict, gate, timings)
                continue
        accepted.append((analysis, picture, timings))
    for analysis in _classify(classifier, accepted, load_ms):
        stored[analysis.pk] = analysis
    return stored


def _classify(
    classifier: Classifier,
    accepted: list[tuple[Analysis, Image.Image, dict[str, float]]],
    load_ms: float,
) -> list[Analysis]:
    """Predict the accepted images in one call, then draw each one's heatmaps and store it on
    its own: an image whose heatmap or store fails fails alone, in plain words."""
    import numpy as np
    from celery.exceptions import SoftTimeLimitExceeded

    if not accepted:
        return []
    pictures = [picture for _, picture, _ in accepted]
    records = [lesion_metadata(analysis.image) for analysis, _, _ in accepted]
    # One forward pass for the batch: its predictions and, where the runtime's graph gives
    # them (ONNX), each image's class activation maps and pooled features with them.
    explained = classifier.predict_explained(pictures, metadata=records)
    embedding_started = time.perf_counter()
    # For similar cases, by the classifier that made the predictions; None without a reduction.
    features = [e.features for e in explained]
    embeddings = embeddings_of(
        pictures, classifier, None if any(f is None for f in features) else np.stack(features)
    )
    embedding_ms = round((time.perf_counter() - embedding_started) * 1000 / len(pictures), 1)
    stored = []
    for (analysis, picture, timings), seen, embedding in zip(
        accepted, explained, embeddings, strict=True
    ):
        prediction = seen.prediction
        try:
            heatmap_started = time.perf_counter()
            top_map = _heatmap(classifier, picture, prediction.top_class, seen.cams)
            # When melanoma is the top class both maps are the same: compute it once.
            melanoma_map = (
                top_map
                if prediction.top_class == "mel"
                else _heatmap(classifier, picture, "mel", seen.cams)
            )
            timings |= dict(prediction.timings_ms)
            timings["heatmaps"] = round((time.perf_counter() - heatmap_started) * 1000, 1)
            timings["embedding"] = embedding_ms
            timings["model_load"] = load_ms
            # Which runtime computed it (torch, onnx-fp32...): results stay comparable across hosts.
            timings["runtime"] = classifier.runtime
            timings["queue_wait"] = _queue_wait_ms(analysis)
            heatmaps = {"heatmap_top": top_map, "heatmap_melanoma": melanoma_map}
            clinic_id = analysis.image.lesion.patient.clinic_id
            stored.append(
                _store_result(analysis.pk, prediction, heatmaps, timings, embedding, clinic_id)
            )
        except (SoftTimeLimitExceeded, OperationalError):
            raise
        except Exception:
            logger.exception("analysis %s failed after its prediction", analysis.pk)
            stored.append(_fail(analysis.pk, FAILED_UNEXPECTEDLY))
    return stored


def _heatmap(classifier: Classifier, picture: Image.Image, target: str, cams) -> Image.Image:
    """The map drawn from the prediction pass's `cams` where it gave them (only a runtime
    whose `predict_explained` returns maps takes them), else by the runtime's own pass."""
    if cams is None:
        return classifier.heatmap(picture, target)
    return classifier.heatmap(picture, target, cams=cams)


def _queue_wait_ms(analysis: Analysis) -> int:
    return round((analysis.started_at - analysis.queued_at).total_seconds() * 1000)


def _store_result(
    analysis_id: int,
    prediction: Prediction,
    heatmaps: dict[str, Image.Image],
    timings: dict[str, float],
    embedding: tuple[str, bytes] | None,
    clinic_id: int,
) -> Analysis:
    with transaction.atomic():
        analysis = Analysis.objects.select_for_update().get(pk=analysis_id)
        if analysis.status in FINISHED:
            return analysis
        for field, picture in heatmaps.items():
            buffer = io.BytesIO()
            picture.save(buffer, "PNG", compress_level=HEATMAP_PNG_COMPRESS_LEVEL)
            getattr(analysis, field).save("heatmap.png", ContentFile(buffer.getvalue()), save=False)
        analysis.probabilities = prediction.probabilities
        analysis.top_class = prediction.top_class
        analysis.melanoma_probability = prediction.melanoma_probability
        analysis.risk_tier = prediction.risk_tier
        triage = prediction.triage
        analysis.triage_level = triage.level if triage is not None else ""
        analysis.triage_reason = triage.reason if triage is not None else ""
        analysis.model_version = prediction.model_version
        analysis.timings_ms = timings
        analysis.metadata_used = list(prediction.metadata_used)
        analysis.status = AnalysisStatus.DONE
        analysis.failure_reason = ""
        analysis.finished_at = timezone.now()
        analysis.save()
        embedding_store(analysis, embedding, clinic_id=clinic_id)
    return analysis


def _store_refusal(
    analysis: Analysis, verdict: Verdict, gate: Gate, timings: dict[str, float]
) -> Analysis:
    """End an analysis whose image the gate refused: the reason, in the gate's words, and
    what it measured; no prediction was made, so nothing of one is stored."""
    timings["queue_wait"] = _queue_wait_ms(analysis)
    measures = {
        "quality": {k: round(float(v), 4) for k, v in verdict.measures.items()},
        "ood_score": None if verdict.ood_score is None else round(verdict.ood_score, 1),
        "ood_threshold": round(gate.ood_threshold, 1),
    }
    with transaction.atomic():
        analysis = Analysis.objects.select_for_update().get(pk=analysis.pk)
        if analysis.status in FINISHED:
            return analysis
        analysis.status = AnalysisStatus.NOT_ANALYSED
        analysis.gate_reason = verdict.reason or "refused"
        analysis.gate_message = verdict.message
        analysis.gate_measures = measures
        analysis.model_version = gate.classifier.version
        analysis.timings_ms = timings
        analysis.failure_reason = ""
        analysis.finished_at = timezone.now()
        analysis.save()
    return analysis
