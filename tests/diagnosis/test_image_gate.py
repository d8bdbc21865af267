"""The image gate in the worker: every upload is checked before any prediction.

Through the worker's path (image_upload, then analysis_run as the Celery task calls it) with the
shipped model and the gate shipped beside it: each non-dermoscopic image of ml.nonderm ends
`not_analysed` with its reason and nothing of a prediction, the shipped dermoscopic samples are
analysed and triaged, a model without a gate (v1) analyses as before, and a doctor's override
gets a prediction without the gate.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from diagnosis import services
from diagnosis.models import Analysis, AnalysisStatus
from ml.classes import CLASSES
from ml.nonderm import non_dermoscopic_images
from tests import factories

SHIPPED_ROOT = Path(settings.BASE_DIR) / "ml" / "models"
NON_DERMOSCOPIC = {name: (kind, image) for name, kind, image in non_dermoscopic_images()}


def _shipped_version() -> str:
    current = SHIPPED_ROOT / "CURRENT"
    if not current.is_file():
        pytest.skip(f"no trained model installed: {current} is missing")
    return current.read_text().strip()


def _card_misses() -> set[str]:
    """Non-dermoscopic images the model card itself reports the gate accepting: the measured
    misses (gate.json), which these tests must not pretend are refused."""
    path = SHIPPED_ROOT / _shipped_version() / "gate.json"
    if not path.is_file():
        return set()
    images = json.loads(path.read_text())["measured"]["non_dermoscopic_rejected"]["images"]
    return {name for name, row in images.items() if row["verdict"] == "accepted"}


@pytest.fixture
def shipped_model(settings):
    """The shipped model (ml/models/CURRENT) and its gate, served as the worker serves them."""
    version = _shipped_version()
    if not (SHIPPED_ROOT / version / "gate.json").is_file():
        pytest.skip(f"{version} ships no image gate")
    settings.ML_MODELS_ROOT = SHIPPED_ROOT
    from diagnosis.classifier import get_classifier

    get_classifier.cache_clear()
    yield version
    get_classifier.cache_clear()


@pytest.fixture
def v1_model(settings, tmp_path):
    """ham10000-lite0-v1 served alone: a model without a gate and without triage."""
    v1 = SHIPPED_ROOT / "ham10000-lite0-v1"
    if not (v1 / "weights.pt").is_file():
        pytest.skip("ham10000-lite0-v1 is not installed")
    root = tmp_path / "models"
    root.mkdir()
    (root / v1.name).symlink_to(v1, target_is_directory=True)
    (root / "CURRENT").write_text(v1.name)
    settings.ML_MODELS_ROOT = root
    from diagnosis.classifier import get_classifier

    get_classifier.cache_clear()
    yield v1.name
    get_classifier.cache_clear()


def _upload(staff, lesion, name: str, content: bytes, content_type: str) -> Analysis:
    upload = SimpleUploadedFile(name, content, content_type=content_type)
    # The synthetic screenshots share one layout, so the duplicate warning would stop the
    # second one; this file is about the gate, not duplicates.
    return services.image_upload(actor=staff, lesion=lesion, upload=upload, allow_duplicate=True)


def _upload_picture(staff, lesion, name: str, image) -> Analysis:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return _upload(staff, lesion, f"{name}.png", buffer.getvalue(), "image/png")


def _assert_no_prediction(analysis: Analysis) -> None:
    assert analysis.probabilities is None
    assert analysis.top_class == "" and analysis.melanoma_probability is None
    assert analysis.risk_tier == "" and analysis.triage_level == ""
    assert not analysis.heatmap_top and not analysis.heatmap_melanoma


@pytest.mark.parametrize("name", sorted(NON_DERMOSCOPIC), ids=str)
def test_worker_refuses_each_non_dermoscopic_image(shipped_model, staff, lesion, name):
    kind, image = NON_DERMOSCOPIC[name]
    if name in _card_misses():
        pytest.xfail(f"{name} ({kind}): a miss the model card reports (gate.json, measured)")
    analysis = _upload_picture(staff, lesion, name, image)

    result = services.analysis_run(analysis_id=analysis.pk)

    assert result.status == AnalysisStatus.NOT_ANALYSED, f"{name} ({kind}) was analysed"
    assert result.gate_reason in {
        "not_dermoscopic",
        "too_small",
        "blurred",
        "too_dark",
        "too_bright",
        "uniform",
    }
    assert result.gate_message  # the gate's plain words
    assert set(result.gate_measures["quality"]) >= {"width", "height", "sharpness", "brightness"}
    assert result.gate_measures["ood_threshold"] > 0
    assert result.model_version == shipped_model
    _assert_no_prediction(result)
    assert result.finished_at is not None and result.attempts == 1


def test_every_kind_of_non_dermoscopic_image_is_refused_through_the_worker(
    shipped_model, staff, lesion
):
    refused: dict[str, int] = {}
    for name, (kind, image) in NON_DERMOSCOPIC.items():
        analysis = _upload_picture(staff, lesion, name, image)
        result = services.analysis_run(analysis_id=analysis.pk)
        refused[kind] = refused.get(kind, 0) + (result.status == AnalysisStatus.NOT_ANALYSED)

    assert all(refused.values()), refused
    assert sum(refused.values()) >= 0.95 * len(NON_DERMOSCOPIC)


@pytest.mark.parametrize("path", sorted(factories.SAMPLES.glob("*.jpg")), ids=lambda p: p.stem)
def test_worker_accepts_the_shipped_dermoscopic_samples_and_triages_them(
    shipped_model, staff, lesion, path
):
    analysis = _upload(staff, lesion, path.name, path.read_bytes(), "image/jpeg")

    result = services.analysis_run(analysis_id=analysis.pk)

    assert result.status == AnalysisStatus.DONE, result.gate_message
    assert set(result.probabilities) == set(CLASSES)
    assert result.gate_reason == "" and result.gate_measures is None
    assert result.triage_level in ("routine", "soon", "urgent")
    assert result.model_version == shipped_model
    assert "gate" in result.timings_ms
    if path.name.startswith("bcc_"):
        assert result.triage_level != "routine"
    if result.triage_level != "routine":
        assert result.triage_reason  # "BCC 96%", "Melanoma 41%", ...


def test_a_model_without_a_gate_analyses_as_before(v1_model, staff, lesion):
    kind, cat = NON_DERMOSCOPIC["cat"]
    analysis = _upload_picture(staff, lesion, "cat", cat)

    result = services.analysis_run(analysis_id=analysis.pk)

    assert result.status == AnalysisStatus.DONE
    assert result.model_version == v1_model
    assert result.risk_tier in ("low", "moderate", "high")
    assert result.triage_level == "" and result.triage_reason == ""  # v1 has no triage
    assert result.gate_reason == "" and "gate" not in result.timings_ms


def test_a_refused_analysis_is_left_alone_by_a_second_delivery(shipped_model, staff, lesion):
    analysis = _upload_picture(staff, lesion, "cat", NON_DERMOSCOPIC["cat"][1])
    services.analysis_run(analysis_id=analysis.pk)

    assert services.analysis_run(analysis_id=analysis.pk) is None
    services.analysis_fail(analysis_id=analysis.pk, reason="a late timeout")

    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.NOT_ANALYSED and analysis.attempts == 1


def test_an_overridden_image_is_predicted_without_the_gate(
    shipped_model, staff, doctor, lesion, django_capture_on_commit_callbacks
):
    analysis = _upload_picture(staff, lesion, "cat", NON_DERMOSCOPIC["cat"][1])
    services.analysis_run(analysis_id=analysis.pk)
    with django_capture_on_commit_callbacks() as sent:
        services.analysis_override_gate(
            actor=doctor, analysis=analysis, reason="Dermoscopy of the ear, checked by eye"
        )
    assert len(sent) == 1

    result = services.analysis_run(analysis_id=analysis.pk)

    assert result.status == AnalysisStatus.DONE
    assert set(result.probabilities) == set(CLASSES)
    assert result.heatmap_top
    assert result.triage_level in ("routine", "soon", "urgent")
    assert result.is_overridden and result.overridden_by == doctor
    assert result.override_reason == "Dermoscopy of the ear, checked by eye"
    assert result.gate_reason == "not_dermoscopic"  # what the gate had said stays on record
    assert result.attempts == 2


def test_the_worker_task_counts_a_refusal_in_the_gate_metric(shipped_model, staff, lesion):
    from prometheus_client import REGISTRY

    from diagnosis.tasks import analyse_image

    kind, image = NON_DERMOSCOPIC["cat"]
    analysis = _upload_picture(staff, lesion, "cat", image)

    def count() -> float:
        labels = {"reason": "not_dermoscopic"}
        return REGISTRY.get_sample_value("portal_gate_rejections_total", labels) or 0.0

    before = count()
    analyse_image(analysis.pk)
    analyse_image(analysis.pk)  # a second delivery of the same task counts nothing

    assert count() == before + 1
