"""The worker's batches (diagnosis.services.batch): queued analyses claimed together, run
through the network in one call, each stored on its own; the claim's rules for redelivery.

The classifier is the shipped one (ml/models/CURRENT); its predict_batch is watched, not
replaced, to count the calls into the network."""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.utils import timezone

from diagnosis import services
from diagnosis.models import Analysis, AnalysisStatus
from ml.nonderm import non_dermoscopic_images
from tests import factories
from tests.diagnosis.watch import watch_batches

pytestmark = pytest.mark.django_db

SHIPPED_ROOT = Path(settings.BASE_DIR) / "ml" / "models"
SAMPLES = sorted(factories.SAMPLES.glob("*.jpg"))


@pytest.fixture
def shipped_model(settings, db):
    if not (SHIPPED_ROOT / "CURRENT").is_file():
        pytest.skip(f"no trained model installed: {SHIPPED_ROOT}/CURRENT is missing")
    settings.ML_MODELS_ROOT = SHIPPED_ROOT
    from diagnosis.classifier import get_classifier

    get_classifier.cache_clear()
    yield get_classifier()
    get_classifier.cache_clear()


@pytest.fixture
def network_calls(shipped_model, monkeypatch):
    """How many images each predict_batch call took (the real method runs)."""
    return watch_batches(shipped_model, monkeypatch)


def _queued(lesion, path: Path, minutes_ago: float = 0) -> Analysis:
    image = factories.DermoscopicImageFactory(lesion=lesion, file=factories.sample_file(path))
    analysis = factories.AnalysisFactory(image=image)
    # Oldest first is the drain's order; spaced so the order is the test's.
    queued_at = timezone.now() - datetime.timedelta(minutes=minutes_ago)
    Analysis.objects.filter(pk=analysis.pk).update(queued_at=queued_at)
    analysis.refresh_from_db()
    return analysis


def test_queued_analyses_run_in_one_network_call_each_with_its_own_result(network_calls, lesion):
    paths = SAMPLES[:6]
    alone = []
    for path in paths:
        analysis = _queued(lesion, path)
        alone.append(services.analysis_run(analysis_id=analysis.pk, batch_size=1))
    assert network_calls == [1] * len(paths)
    network_calls.clear()
    together = [_queued(lesion, path, minutes_ago=len(paths) - n) for n, path in enumerate(paths)]

    ran = services.analysis_run_batch(analysis_id=together[0].pk, batch_size=16)

    assert network_calls == [len(paths)]  # one call into the network for all six
    assert [a.pk for a in ran] == [a.pk for a in together]
    for single, batched in zip(alone, ran, strict=True):
        batched.refresh_from_db()
        assert batched.status == AnalysisStatus.DONE
        assert batched.top_class == single.top_class
        assert batched.risk_tier == single.risk_tier
        for code, p in single.probabilities.items():
            assert batched.probabilities[code] == pytest.approx(p, abs=1e-4)
        assert batched.heatmap_top and batched.heatmap_melanoma
        assert batched.timings_ms["batch_size"] == len(paths)
        assert single.timings_ms["batch_size"] == 1
        assert batched.attempts == 1 and batched.batch_lead == together[0].pk


def test_a_corrupt_image_fails_alone_in_plain_words_and_the_others_finish(network_calls, lesion):
    good = [_queued(lesion, path, minutes_ago=5 - n) for n, path in enumerate(SAMPLES[:3])]
    corrupt = factories.AnalysisFactory(
        image=factories.DermoscopicImageFactory(
            lesion=lesion, file=factories.ContentFile(b"not an image", name="x.jpg")
        )
    )

    ran = services.analysis_run_batch(analysis_id=good[0].pk, batch_size=16)

    outcome = {a.pk: a for a in ran}
    assert set(outcome) == {a.pk for a in good} | {corrupt.pk}
    assert outcome[corrupt.pk].status == AnalysisStatus.FAILED
    assert outcome[corrupt.pk].failure_reason == (
        "The stored image could not be read; please upload it again."
    )
    assert all(outcome[a.pk].status == AnalysisStatus.DONE for a in good)
    assert network_calls == [3]


def test_the_gate_refuses_a_photo_in_a_batch_and_the_lesions_are_analysed(shipped_model, lesion):
    from diagnosis.classifier import get_gate

    if get_gate() is None:
        pytest.skip("the served model ships no image gate")
    lesions = [_queued(lesion, path, minutes_ago=5 - n) for n, path in enumerate(SAMPLES[:2])]
    name, kind, picture = next(
        item for item in non_dermoscopic_images() if item[1] != "other medical"
    )
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, "JPEG")
    photo = factories.AnalysisFactory(
        image=factories.DermoscopicImageFactory(
            lesion=lesion, file=factories.ContentFile(buffer.getvalue(), name=f"{name}.jpg")
        )
    )

    ran = {a.pk: a for a in services.analysis_run_batch(analysis_id=photo.pk, batch_size=4)}

    assert ran[photo.pk].status == AnalysisStatus.NOT_ANALYSED, f"{name} ({kind}) analysed"
    assert ran[photo.pk].gate_message and ran[photo.pk].probabilities is None
    assert all(ran[a.pk].status == AnalysisStatus.DONE for a in lesions)
    assert all(ran[a.pk].timings_ms["batch_size"] == 3 for a in [photo, *lesions])


def test_a_lone_analysis_runs_at_once_in_a_batch_of_one(network_calls, lesion):
    analysis = _queued(lesion, SAMPLES[0])

    ran = services.analysis_run_batch(analysis_id=analysis.pk, batch_size=16)

    assert [a.pk for a in ran] == [analysis.pk] and ran[0].status == AnalysisStatus.DONE
    assert ran[0].timings_ms["batch_size"] == 1 and network_calls == [1]


# --- the claim: no model needed ------------------------------------------------------------


def _waiting(lesion, n: int) -> list[Analysis]:
    analyses = []
    for k in range(n):
        analysis = factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
        Analysis.objects.filter(pk=analysis.pk).update(
            queued_at=timezone.now() - datetime.timedelta(minutes=n - k)
        )
        analyses.append(analysis)
    return analyses


def _status(analysis: Analysis) -> str:
    analysis.refresh_from_db()
    return analysis.status


def test_the_claim_takes_the_oldest_waiting_and_never_gives_one_to_two_tasks(lesion):
    first, second, third, fourth, fifth = _waiting(lesion, 5)

    claimed = services.analysis_claim_batch(analysis_id=fifth.pk, batch_size=3)

    assert [a.pk for a in claimed] == [fifth.pk, first.pk, second.pk]
    assert all(_status(a) == AnalysisStatus.RUNNING for a in (fifth, first, second))
    # The task of an analysis running in another's batch leaves it alone.
    assert services.analysis_claim_batch(analysis_id=first.pk, batch_size=3) == []
    assert Analysis.objects.get(pk=first.pk).attempts == 1
    assert [a.pk for a in services.analysis_claim_batch(analysis_id=third.pk, batch_size=3)] == [
        third.pk,
        fourth.pk,
    ]


def test_a_lead_delivered_again_runs_alone_and_sends_its_batch_back(
    lesion, django_capture_on_commit_callbacks, monkeypatch
):
    from diagnosis import tasks

    sent: list[int] = []
    monkeypatch.setattr(tasks.analyse_image, "delay", sent.append)  # the broker's side
    lead, other, another = _waiting(lesion, 3)
    services.analysis_claim_batch(analysis_id=lead.pk, batch_size=3)

    # Its worker died mid-batch; the broker delivers the lead's message again.
    with django_capture_on_commit_callbacks(execute=True):
        again = services.analysis_claim_batch(analysis_id=lead.pk, batch_size=3)

    assert [a.pk for a in again] == [lead.pk] and again[0].attempts == 2
    assert _status(other) == _status(another) == AnalysisStatus.QUEUED
    assert sorted(sent) == sorted([other.pk, another.pk])
    # Their own messages, or the ones just sent, claim them afresh.
    assert [a.pk for a in services.analysis_claim_batch(analysis_id=other.pk, batch_size=1)] == [
        other.pk
    ]


def test_a_lead_finished_before_its_worker_died_still_sends_its_batch_back(
    lesion, django_capture_on_commit_callbacks, monkeypatch
):
    from diagnosis import tasks

    sent: list[int] = []
    monkeypatch.setattr(tasks.analyse_image, "delay", sent.append)
    lead, other = _waiting(lesion, 2)
    services.analysis_claim_batch(analysis_id=lead.pk, batch_size=2)
    services.analysis_fail(analysis_id=lead.pk, reason="stored before the worker died")

    with django_capture_on_commit_callbacks(execute=True):
        assert services.analysis_claim_batch(analysis_id=lead.pk, batch_size=2) == []

    assert _status(other) == AnalysisStatus.QUEUED and sent == [other.pk]


def test_the_sweep_sends_again_a_batch_whose_worker_and_message_are_gone(lesion, settings):
    settings.ANALYSIS_TIME_LIMIT_S = 60
    lead, other = _waiting(lesion, 2)
    services.analysis_claim_batch(analysis_id=lead.pk, batch_size=2)
    Analysis.objects.filter(pk__in=[lead.pk, other.pk]).update(
        started_at=timezone.now() - datetime.timedelta(seconds=61)
    )

    services.analysis_requeue_stale()

    for analysis in (lead, other):
        analysis.refresh_from_db()
        assert analysis.status == AnalysisStatus.QUEUED and analysis.batch_lead is None


def test_a_finished_analysis_is_never_claimed_again(lesion):
    done = factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
    (waiting,) = _waiting(lesion, 1)

    claimed = services.analysis_claim_batch(analysis_id=waiting.pk, batch_size=8)

    assert [a.pk for a in claimed] == [waiting.pk]
    assert _status(done) == AnalysisStatus.DONE


def test_the_task_records_its_batch_size_for_prometheus(shipped_model, lesion, settings):
    from prometheus_client import REGISTRY

    from diagnosis import tasks

    settings.ANALYSIS_BATCH_SIZE = 8
    first, *others = [
        _queued(lesion, path, minutes_ago=3 - n) for n, path in enumerate(SAMPLES[:3])
    ]
    count = REGISTRY.get_sample_value("portal_analysis_batch_size_count") or 0.0
    total = REGISTRY.get_sample_value("portal_analysis_batch_size_sum") or 0.0

    assert tasks.analyse_image.apply(args=[first.pk]).get() == AnalysisStatus.DONE

    assert REGISTRY.get_sample_value("portal_analysis_batch_size_count") == count + 1
    assert REGISTRY.get_sample_value("portal_analysis_batch_size_sum") == total + 3
    assert all(_status(a) == AnalysisStatus.DONE for a in others)
    assert tasks.analyse_image.apply(args=[others[0].pk]).get() == "skipped"


# --- the ONNX runtime: one run of the graph per batch ---------------------------------------


@pytest.fixture
def shipped_onnx(settings, db):
    """The shipped model served by ONNX Runtime (fp32), with the runs of its graph counted
    (the real runner runs); skips without an exported ONNX form that has all three outputs."""
    from diagnosis.classifier import get_classifier

    if not (SHIPPED_ROOT / "CURRENT").is_file():
        pytest.skip(f"no trained model installed: {SHIPPED_ROOT}/CURRENT is missing")
    settings.ML_MODELS_ROOT = SHIPPED_ROOT
    settings.ML_RUNTIME = "onnx-fp32"
    get_classifier.cache_clear()
    try:
        classifier = get_classifier()
    except ValueError as error:
        pytest.skip(f"the shipped model has no servable onnx-fp32 form: {error}")
    if "features" not in classifier.runner.output_names:
        pytest.skip("the shipped model.onnx has no features output: run python -m ml.runtimes")
    runs: list[int] = []
    real = classifier.runner.outputs

    def outputs(images, *args, **kwargs):
        runs.append(len(images))
        return real(images, *args, **kwargs)

    classifier.runner.outputs = outputs
    yield classifier, runs
    del classifier.runner.outputs
    get_classifier.cache_clear()


def _pixels(field) -> np.ndarray:
    from PIL import Image

    with field.open("rb") as handle, Image.open(handle) as picture:
        return np.asarray(picture.convert("RGB"), dtype=float)


def _vector(analysis: Analysis) -> np.ndarray:
    from diagnosis.models import ImageEmbedding

    return np.frombuffer(ImageEmbedding.objects.get(analysis=analysis).vector, dtype="<f4")


def test_an_onnx_batch_runs_the_graph_once_and_stores_what_one_at_a_time_stores(
    shipped_onnx, lesion
):
    """Predictions, both heatmaps and the embedding of a batch come from one run of the
    classifier's graph, and equal, within float rounding, each image analysed alone, and the
    heatmap and embedding that their own passes through the network give."""
    from diagnosis.services.embedding import embedding_of
    from diagnosis.services.image import image_for_analysis

    classifier, runs = shipped_onnx
    paths = SAMPLES[:6]
    alone = []
    for path in paths:
        analysis = _queued(lesion, path)
        alone.append(services.analysis_run(analysis_id=analysis.pk, batch_size=1))
    assert runs == [1] * len(paths)
    runs.clear()
    together = [_queued(lesion, path, minutes_ago=len(paths) - n) for n, path in enumerate(paths)]

    ran = services.analysis_run_batch(analysis_id=together[0].pk, batch_size=16)

    assert runs == [len(paths)]  # one run of the graph: no pass for heatmaps or embeddings
    runs.clear()
    for single, batched in zip(alone, ran, strict=True):
        batched.refresh_from_db()
        assert batched.status == AnalysisStatus.DONE and batched.batch_lead == together[0].pk
        assert (batched.top_class, batched.risk_tier, batched.triage_level) == (
            single.top_class,
            single.risk_tier,
            single.triage_level,
        )
        assert batched.probabilities == pytest.approx(single.probabilities, abs=1e-4)
        assert batched.timings_ms["runtime"] == "onnx-fp32"
        picture = image_for_analysis(batched.image)
        for field, target in (("heatmap_top", batched.top_class), ("heatmap_melanoma", "mel")):
            stored = _pixels(getattr(batched, field))
            np.testing.assert_allclose(stored, _pixels(getattr(single, field)), atol=1)
            # and what a separate CAM pass of the network draws (the path before batching)
            drawn = np.asarray(classifier.heatmap(picture, target), dtype=float)
            np.testing.assert_allclose(stored, drawn, atol=1)
        space, vector = embedding_of(picture, classifier)
        np.testing.assert_allclose(_vector(batched), _vector(single), atol=1e-5)
        np.testing.assert_allclose(_vector(batched), np.frombuffer(vector, "<f4"), atol=1e-5)


def test_a_batch_reads_and_writes_the_database_a_fixed_number_of_times_per_analysis(
    shipped_onnx, lesion
):
    """Storing an analysis takes a fixed number of statements whatever the batch's size: the
    lesion, patient and clinic are read once per batch, the registry asked once, and the
    embedding written in one statement (no SELECT and savepoints of update_or_create)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from diagnosis.services.batch import analyses_claim, analyses_run

    counts = {}
    for size in (2, 6):
        ids = [_queued(lesion, path).pk for path in SAMPLES[:size]]
        claimed = analyses_claim(analysis_ids=ids)
        with CaptureQueriesContext(connection) as queries:
            ran = analyses_run(claimed)
        assert all(a.status == AnalysisStatus.DONE for a in ran)
        counts[size] = len(queries.captured_queries)

    per_analysis = (counts[6] - counts[2]) / 4
    # Per analysis: its atomic block (a savepoint and its release inside the test's
    # transaction; BEGIN and COMMIT in a worker), SELECT ... FOR UPDATE, UPDATE, the embedding's
    # INSERT ... ON CONFLICT. Per batch: the registry, the lesions, the patients.
    assert per_analysis == 5, counts
    assert counts[2] - 2 * per_analysis == 3, counts


def test_storing_an_analysis_embedding_again_replaces_it(lesion):
    from diagnosis.models import ImageEmbedding
    from diagnosis.services.embedding import embedding_store

    analysis = factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
    clinic_id = lesion.patient.clinic_id

    embedding_store(analysis, ("v1/pca2-a", b"\x00" * 8), clinic_id=clinic_id)
    embedding_store(analysis, ("v2/pca2-b", b"\x01" * 8))

    stored = ImageEmbedding.objects.get(analysis=analysis)
    assert (stored.space, bytes(stored.vector), stored.clinic_id) == (
        "v2/pca2-b",
        b"\x01" * 8,
        clinic_id,
    )
