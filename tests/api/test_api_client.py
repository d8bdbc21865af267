"""docs/api-client.py against the live server, with a real Celery worker process doing the
analysis (PostgreSQL + Redis, as in production): the example in the docs must keep working."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests import factories
from tests.api.conftest import token_client
from tests.worker import celery_worker, require_shared_services

CLIENT = Path(settings.BASE_DIR) / "docs" / "api-client.py"
SAMPLE = Path(settings.BASE_DIR) / "samples" / "mel_ISIC_0024481.jpg"


def run_client(live_server, token: str, lesion_id: int, image: Path = SAMPLE, timeout=240):
    return subprocess.run(
        [
            sys.executable,
            str(CLIENT),
            str(image),
            "--base-url",
            live_server.url,
            "--token",
            token,
            "--lesion",
            str(lesion_id),
            "--timeout",
            str(timeout),
            "--interval",
            "0.2",
        ],
        capture_output=True,
        text=True,
        timeout=timeout + 60,
    )


@pytest.fixture
def client_setup(transactional_db):
    clinic = factories.ClinicFactory()
    staff = factories.UserFactory(clinic=clinic)
    lesion = factories.LesionFactory(patient=factories.PatientFactory(clinic=clinic))
    token = token_client(staff)._credentials["HTTP_AUTHORIZATION"].removeprefix("Token ")
    return token, lesion


@pytest.mark.integration
@pytest.mark.slow
def test_client_uploads_and_prints_the_result_from_a_real_worker(live_server, client_setup):
    require_shared_services()
    if not (Path(settings.ML_MODELS_ROOT) / "CURRENT").exists():
        pytest.skip(f"no trained model installed: {settings.ML_MODELS_ROOT}/CURRENT is missing")
    token, lesion = client_setup
    seconds = []

    with celery_worker(purge=True, media_root=settings.MEDIA_ROOT) as worker:
        # Three different pictures: the same one again would be refused as a duplicate (409).
        for name in ("mel_ISIC_0024481.jpg", "bcc_ISIC_0024457.jpg", "nv_ISIC_0024319.jpg"):
            result = run_client(live_server, token, lesion.pk, SAMPLE.parent / name)
            assert result.returncode == 0, result.stdout + result.stderr + worker.log()[-3000:]
            seconds.append(float(re.search(r"Upload to result: ([\d.]+)s", result.stdout)[1]))

    out = result.stdout
    assert "done" in out
    assert re.search(r"Melanoma probability: \d+\.\d%", out)
    # A model with triage prints the triage and its reason; one without, the melanoma tier.
    assert re.search(r"Triage: (Urgent|Soon|Routine) — ", out) or re.search(
        r"Risk tier: (low|moderate|high)", out
    )
    assert "Model version: " in out
    assert "AI-assisted assessment, not a diagnosis. Consult a dermatologist." in out
    print(f"upload-to-result through the API: {seconds}, median {statistics.median(seconds):.2f}s")


@pytest.mark.integration
@pytest.mark.slow
def test_client_prints_the_refusal_of_a_photo_that_is_not_dermoscopy(
    live_server, client_setup, tmp_path
):
    require_shared_services()
    current = Path(settings.ML_MODELS_ROOT) / "CURRENT"
    if (
        not current.exists()
        or not (current.parent / current.read_text().strip() / "gate.json").exists()
    ):
        pytest.skip("needs the trained model with its image gate")
    from ml.nonderm import non_dermoscopic_images

    token, lesion = client_setup
    photo = tmp_path / "coffee.png"
    next(image for name, _, image in non_dermoscopic_images() if name == "coffee").save(photo)

    with celery_worker(purge=True, media_root=settings.MEDIA_ROOT) as worker:
        result = run_client(live_server, token, lesion.pk, image=photo, timeout=120)

    assert result.returncode == 2, result.stdout + result.stderr + worker.log()[-3000:]
    assert "not_analysed" in result.stdout
    assert "Not analysed: this does not look like a dermoscopic image" in result.stdout
    assert "What to do: " in result.stdout
    assert "Melanoma probability" not in result.stdout


@pytest.mark.integration
@pytest.mark.slow
def test_client_prints_the_reason_when_no_classifier_is_installed(
    live_server, client_setup, tmp_path
):
    require_shared_services()
    token, lesion = client_setup
    empty = tmp_path / "no-models"
    empty.mkdir()

    with celery_worker(
        purge=True, media_root=settings.MEDIA_ROOT, env={"ML_MODELS_ROOT": str(empty)}
    ) as worker:
        result = run_client(live_server, token, lesion.pk, timeout=120)

    assert result.returncode == 2, result.stdout + result.stderr + worker.log()[-3000:]
    assert "failed" in result.stdout
    assert "Reason: No classifier installed" in result.stdout


def test_client_with_a_bad_token_says_so_and_exits_1(live_server, transactional_db, lesion):
    result = run_client(live_server, "not-a-token", lesion.pk, timeout=10)

    assert result.returncode == 1
    assert "HTTP 401" in result.stderr
    assert "Invalid token" in result.stderr


def test_client_reports_a_rejected_upload(live_server, client_setup, tmp_path):
    token, lesion = client_setup
    fake = tmp_path / "notes.jpg"
    fake.write_text("not a photo")

    result = run_client(live_server, token, lesion.pk, image=fake, timeout=10)

    assert result.returncode == 1
    assert "HTTP 415" in result.stderr
    assert "not a JPEG or PNG" in result.stderr
