"""A promotion and a rollback reach a running worker process at its next task, without a
restart: the worker asks the registry which version is active for every analysis."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from diagnosis import services
from diagnosis.models import Analysis, AnalysisStatus, ModelStatus, ModelVersion
from tests import factories
from tests.diagnosis import model_dirs
from tests.worker import celery_worker, require_shared_services, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _analysed(staff, lesion, worker) -> Analysis:
    sample = factories.SAMPLES / "nv_ISIC_0024319.jpg"
    upload = SimpleUploadedFile(sample.name, sample.read_bytes(), content_type="image/jpeg")
    # The same sample before and after each promotion: not a duplicate worth a warning here.
    analysis = services.image_upload(
        actor=staff, lesion=lesion, upload=upload, allow_duplicate=True
    )

    def finished() -> bool:
        analysis.refresh_from_db()
        return analysis.status in (AnalysisStatus.DONE, AnalysisStatus.FAILED)

    wait_for(finished, timeout=120, message=f"no result:\n{worker.log()[-3000:]}")
    assert analysis.status == AnalysisStatus.DONE, analysis.failure_reason
    return analysis


def test_promotion_and_rollback_reach_a_running_worker_without_restart(tmp_path):
    require_shared_services()
    root = tmp_path / "models"
    model_dirs.random_model(
        root, "served-v1", figures=model_dirs.validation(0.70, 0.95), current=True
    )
    model_dirs.random_model(root, "next-v2", figures=model_dirs.validation(0.72, 0.95), seed=1)
    superuser = factories.SuperuserFactory()
    clinic = factories.ClinicFactory()
    staff = factories.UserFactory(clinic=clinic)
    lesion = factories.LesionFactory(patient=factories.PatientFactory(clinic=clinic))

    # A prefork pool, as bin/worker runs: its process registers the folder as it starts.
    with celery_worker(env={"ML_MODELS_ROOT": str(root)}, pool="prefork", purge=True) as worker:
        wait_for(
            lambda: ModelVersion.objects.filter(status=ModelStatus.ACTIVE).exists(),
            timeout=90,
            message=f"the worker registered nothing:\n{worker.log()[-3000:]}",
        )
        assert _analysed(staff, lesion, worker).model_version == "served-v1"

        candidate = ModelVersion.objects.get(version="next-v2")
        services.model_version_promote(actor=superuser, model_version=candidate, reason="Better")
        assert _analysed(staff, lesion, worker).model_version == "next-v2"

        services.model_version_rollback(actor=superuser, reason="Back to the known one")
        assert _analysed(staff, lesion, worker).model_version == "served-v1"

        assert worker.is_alive()
        log = worker.log()
    assert log.count(" ready.") == 1, "the worker restarted"
    # Earlier results stay pinned to the version that made them.
    assert list(Analysis.objects.order_by("queued_at").values_list("model_version", flat=True)) == [
        "served-v1",
        "next-v2",
        "served-v1",
    ]
