"""A real Celery worker process, against Redis and PostgreSQL, analyses an uploaded image."""

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
from tests import factories
from tests.worker import celery_worker, require_shared_services, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SAMPLE = Path(settings.BASE_DIR) / "samples" / "mel_ISIC_0024481.jpg"


def upload_sample(staff, lesion) -> Analysis:
    # The same service the upload view calls; the task is sent when the transaction commits.
    upload = SimpleUploadedFile(SAMPLE.name, SAMPLE.read_bytes(), content_type="image/jpeg")
    return services.image_upload(actor=staff, lesion=lesion, upload=upload)


def finished(analysis: Analysis):
    def check() -> bool:
        analysis.refresh_from_db()
        return analysis.status in (AnalysisStatus.DONE, AnalysisStatus.FAILED)

    return check


@pytest.fixture
def staff_and_lesion():
    clinic = factories.ClinicFactory()
    staff = factories.UserFactory(clinic=clinic)
    lesion = factories.LesionFactory(patient=factories.PatientFactory(clinic=clinic))
    return staff, lesion


def test_worker_process_analyses_an_upload_and_stores_the_prediction(staff_and_lesion):
    require_shared_services()
    if not (Path(settings.ML_MODELS_ROOT) / "CURRENT").exists():
        pytest.skip(f"no trained model installed: {settings.ML_MODELS_ROOT}/CURRENT is missing")
    staff, lesion = staff_and_lesion

    with celery_worker(purge=True) as worker:
        analysis = upload_sample(staff, lesion)
        assert analysis.status == AnalysisStatus.QUEUED
        wait_for(finished(analysis), timeout=180, message=f"no result:\n{worker.log()[-3000:]}")

    assert analysis.status == AnalysisStatus.DONE, analysis.failure_reason
    assert set(analysis.probabilities) == set(CLASSES)
    assert sum(analysis.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    # The shown class is the card's decision: argmax(p * class weight) for v2 cards (rare
    # cancers weighed up), plain argmax for v1 cards.
    version = (Path(settings.ML_MODELS_ROOT) / "CURRENT").read_text().strip()
    card = json.loads((Path(settings.ML_MODELS_ROOT) / version / "card.json").read_text())
    weights = card.get("decision", {}).get("class_weights") or [1.0] * len(CLASSES)
    weighted = {c: analysis.probabilities[c] * w for c, w in zip(CLASSES, weights, strict=True)}
    assert analysis.top_class == max(weighted, key=weighted.get)
    assert analysis.metadata_used == (
        ["age", "sex", "site"] if card.get("metadata", {}).get("used") else []
    )
    assert analysis.melanoma_probability == pytest.approx(analysis.probabilities["mel"])
    assert analysis.risk_tier in ("low", "moderate", "high")
    assert analysis.model_version == (Path(settings.ML_MODELS_ROOT) / "CURRENT").read_text().strip()
    assert {"inference", "model_load", "queue_wait"} <= set(analysis.timings_ms)
    assert analysis.attempts == 1
    from PIL import Image

    with analysis.heatmap_top.open("rb") as handle:
        assert Image.open(io.BytesIO(handle.read())).size == (
            analysis.image.width,
            analysis.image.height,
        )


def test_worker_process_refuses_a_photo_that_is_not_dermoscopy(staff_and_lesion):
    require_shared_services()
    current = Path(settings.ML_MODELS_ROOT) / "CURRENT"
    if not current.exists():
        pytest.skip(f"no trained model installed: {current} is missing")
    if not (current.parent / current.read_text().strip() / "gate.json").exists():
        pytest.skip("the installed model ships no image gate")
    from ml.nonderm import non_dermoscopic_images

    staff, lesion = staff_and_lesion
    cat = next(image for name, _kind, image in non_dermoscopic_images() if name == "cat")
    buffer = io.BytesIO()
    cat.save(buffer, "JPEG", quality=90)
    upload = SimpleUploadedFile("cat.jpg", buffer.getvalue(), content_type="image/jpeg")

    with celery_worker(purge=True) as worker:
        analysis = services.image_upload(actor=staff, lesion=lesion, upload=upload)

        def ended() -> bool:
            analysis.refresh_from_db()
            return analysis.status in ("done", "failed", "not_analysed")

        wait_for(ended, timeout=180, message=f"no outcome:\n{worker.log()[-3000:]}")

    assert analysis.status == AnalysisStatus.NOT_ANALYSED, analysis.failure_reason
    assert analysis.gate_reason == "not_dermoscopic"
    assert analysis.probabilities is None and not analysis.heatmap_top
    assert analysis.gate_measures["ood_score"] > analysis.gate_measures["ood_threshold"]


def test_worker_without_a_model_fails_the_analysis_with_a_readable_reason(
    staff_and_lesion, tmp_path
):
    require_shared_services()
    staff, lesion = staff_and_lesion
    empty = tmp_path / "no-models"
    empty.mkdir()

    with celery_worker(purge=True, env={"ML_MODELS_ROOT": str(empty)}) as worker:
        analysis = upload_sample(staff, lesion)
        wait_for(finished(analysis), timeout=90, message=f"no outcome:\n{worker.log()[-3000:]}")

    assert analysis.status == AnalysisStatus.FAILED
    assert analysis.failure_reason.startswith("No classifier installed")
    assert analysis.probabilities is None and analysis.top_class == ""
