"""What operations see of one upload: the request id nginx gives the web request is in the
worker's JSON log line for the analysis it queued, and the worker host's own /metrics count the
task (prefork pool, prometheus-client's multiprocess mode, as deploy/ runs it)."""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from diagnosis.models import Analysis, AnalysisStatus
from tests import factories
from tests.prometheus import sample
from tests.s3 import free_port
from tests.worker import celery_worker, purge_queues, require_shared_services, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SAMPLE = Path(settings.BASE_DIR) / "samples" / "mel_ISIC_0024481.jpg"


def test_request_id_reaches_the_worker_log_and_the_worker_host_counts_the_task(client, tmp_path):
    require_shared_services()
    purge_queues()
    staff = factories.UserFactory(clinic=factories.ClinicFactory())
    lesion = factories.LesionFactory(patient=factories.PatientFactory(clinic=staff.clinic))
    (tmp_path / "no-models").mkdir()
    (tmp_path / "prometheus").mkdir()
    port = free_port()
    env = {
        "LOG_FORMAT": "json",
        "ML_MODELS_ROOT": str(tmp_path / "no-models"),  # fails fast, with a reason
        "WORKER_METRICS_PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
    }
    client.force_login(staff)

    with celery_worker(env=env, pool="prefork", hostname="host-a") as worker:
        response = client.post(
            reverse("diagnosis:upload", args=[lesion.patient_id]),
            {
                "lesion": lesion.pk,
                "image": SimpleUploadedFile(SAMPLE.name, SAMPLE.read_bytes(), "image/jpeg"),
                "submission_token": str(uuid.uuid4()),
            },
            HTTP_X_REQUEST_ID="upload-7f3a",
        )
        assert response.status_code == 302 and response["X-Request-ID"] == "upload-7f3a"
        analysis = Analysis.objects.get(image__lesion=lesion)
        wait_for(
            lambda: Analysis.objects.get(pk=analysis.pk).status == AnalysisStatus.FAILED,
            timeout=60,
            message=f"no outcome:\n{worker.log()[-3000:]}",
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as scrape:  # noqa: S310
            metrics = scrape.read().decode()

    lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    finished = [line for line in lines if line.get("task") == "diagnosis.tasks.analyse_image"]
    assert len(finished) == 1
    assert finished[0]["request_id"] == "upload-7f3a"
    assert finished[0]["task_args"] == [analysis.pk] and finished[0]["outcome"] == "failed"
    assert finished[0]["worker"].startswith("host-a@")
    assert {"time", "level", "logger", "message"} <= set(finished[0])
    assert (
        sample(
            metrics, "portal_tasks_total", task="diagnosis.tasks.analyse_image", outcome="failed"
        )
        == 1
    )
