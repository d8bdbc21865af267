"""A real Celery worker process runs a backlog in batches and a lone upload at once.

Uploads are committed (their tasks sent) before the worker starts, so it finds a backlog: its
first task claims a batch, the tasks of the analyses in it find them done and leave them."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from diagnosis import services
from diagnosis.models import Analysis, AnalysisStatus
from tests import factories
from tests.worker import celery_worker, purge_queues, require_shared_services, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SAMPLES = sorted((Path(settings.BASE_DIR) / "samples").glob("*.jpg"))
BACKLOG = 8
BATCH = 4


@pytest.fixture
def staff_and_lesion():
    require_shared_services()
    if not (Path(settings.ML_MODELS_ROOT) / "CURRENT").exists():
        pytest.skip(f"no trained model installed: {settings.ML_MODELS_ROOT}/CURRENT is missing")
    clinic = factories.ClinicFactory()
    staff = factories.UserFactory(clinic=clinic)
    lesion = factories.LesionFactory(patient=factories.PatientFactory(clinic=clinic))
    return staff, lesion


def _upload(staff, lesion, path: Path) -> Analysis:
    upload = SimpleUploadedFile(path.name, path.read_bytes(), content_type="image/jpeg")
    return services.image_upload(actor=staff, lesion=lesion, upload=upload, allow_duplicate=True)


def _all_finished(ids: list[int]):
    def check() -> bool:
        return (
            not Analysis.objects.filter(pk__in=ids)
            .exclude(
                status__in=(AnalysisStatus.DONE, AnalysisStatus.FAILED, AnalysisStatus.NOT_ANALYSED)
            )
            .exists()
        )

    return check


def test_a_worker_runs_a_backlog_in_batches_and_each_analysis_once(staff_and_lesion):
    staff, lesion = staff_and_lesion
    purge_queues()
    ids = [_upload(staff, lesion, SAMPLES[n % len(SAMPLES)]).pk for n in range(BACKLOG)]

    with celery_worker(env={"ANALYSIS_BATCH_SIZE": str(BATCH)}) as worker:
        wait_for(_all_finished(ids), timeout=240, message=f"not finished:\n{worker.log()[-3000:]}")
        # The tasks of the analyses run in another's batch find them done and skip them; the
        # last of those messages may still be on their way when the results are stored.
        skipped = BACKLOG - BACKLOG // BATCH
        wait_for(
            lambda: worker.log().count("finished: skipped") >= skipped,
            timeout=60,
            message=f"too few tasks skipped:\n{worker.log()[-3000:]}",
        )
        log = worker.log()

    analyses = list(Analysis.objects.filter(pk__in=ids))
    assert all(a.status == AnalysisStatus.DONE for a in analyses), [
        (a.pk, a.status, a.failure_reason) for a in analyses
    ]
    assert all(a.attempts == 1 for a in analyses)  # none run twice
    leads = {a.batch_lead for a in analyses}
    assert len(leads) == BACKLOG // BATCH  # two tasks ran all eight
    assert all(a.timings_ms["batch_size"] == BATCH for a in analyses)
    assert log.count("finished: skipped") == BACKLOG - len(leads)


def test_a_lone_upload_runs_at_once_without_waiting_for_a_batch(staff_and_lesion):
    staff, lesion = staff_and_lesion
    purge_queues()
    with celery_worker(env={"ANALYSIS_BATCH_SIZE": "16"}) as worker:
        analysis = _upload(staff, lesion, SAMPLES[0])
        wait_for(
            _all_finished([analysis.pk]), timeout=60, message=f"no result:\n{worker.log()[-3000:]}"
        )

    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.DONE
    assert analysis.timings_ms["batch_size"] == 1
    # From upload to the worker starting it: the broker's delivery, no wait for company.
    assert analysis.timings_ms["queue_wait"] < 2000, analysis.timings_ms
