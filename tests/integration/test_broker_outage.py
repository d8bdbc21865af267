"""A lost broker: an upload made while the broker is unreachable still succeeds within
seconds, its analysis waits in the database, and the beat sweep sends it once the broker is
back. The upload runs in its own process whose broker URL points at a closed port, as a web
process's would during the outage."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time

import pytest
from django.utils import timezone

from diagnosis.models import Analysis, AnalysisStatus
from diagnosis.services.analysis import analysis_requeue_stale
from melanoma_portal.ops import queue_depths
from tests import factories
from tests.s3 import free_port
from tests.worker import REPO_ROOT, purge_queues, require_shared_services
from tests.worker import test_database_url as database_url

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

UPLOAD = """
from django.core.files.uploadedfile import SimpleUploadedFile
from accounts.models import User
from diagnosis import services
from diagnosis.models import Lesion
sample = open("samples/mel_ISIC_0024481.jpg", "rb").read()
analysis = services.image_upload(
    actor=User.objects.get(pk={staff}), lesion=Lesion.objects.get(pk={lesion}),
    upload=SimpleUploadedFile("lesion.jpg", sample, content_type="image/jpeg"),
)
print("analysis", analysis.pk)
"""


def test_an_upload_during_a_broker_outage_succeeds_and_is_analysed_after_it(settings):
    require_shared_services()
    purge_queues()
    staff = factories.UserFactory(clinic=factories.ClinicFactory())
    lesion = factories.LesionFactory(patient=factories.PatientFactory(clinic=staff.clinic))
    dead = settings.CELERY_BROKER_URL.split("://")[0] + f"://guest:guest@127.0.0.1:{free_port()}/"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CELERY_BROKER_URL": dead,
    }

    started = time.monotonic()
    upload = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            UPLOAD.format(staff=staff.pk, lesion=lesion.pk),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    seconds = time.monotonic() - started

    assert upload.returncode == 0, upload.stderr[-3000:]
    assert seconds < 20, seconds  # the outage cost seconds (Django's start-up included)
    assert "Error calling" in upload.stderr  # logged, with the reason, not swallowed
    analysis = Analysis.objects.get(image__lesion=lesion)
    assert analysis.status == AnalysisStatus.QUEUED
    assert queue_depths()["inference"][0] == 0  # nothing reached the (real) broker

    # The broker is back: beat's sweep re-sends what waited longer than any task can.
    Analysis.objects.filter(pk=analysis.pk).update(
        queued_at=timezone.now() - datetime.timedelta(minutes=20)
    )
    assert analysis_requeue_stale() == 1
    assert queue_depths()["inference"][0] == 1
    purge_queues()
