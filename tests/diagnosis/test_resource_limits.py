"""One user cannot starve the clinic network: huge images are analysed on a working copy, and a
clinic's uploads per hour are capped with a clear 429 (pages and API alike).

Assertions are on resolutions and counts, never on times.
"""

from __future__ import annotations

import datetime
import io
import uuid
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from diagnosis import services
from diagnosis.models import AnalysisStatus, DermoscopicImage
from diagnosis.services.image import UploadQuotaExceeded, image_for_analysis
from tests import factories


def flat_png(size: tuple[int, int]) -> bytes:
    """The outside-style test's upload: a flat PNG, tiny on disk, huge once decoded."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (196, 150, 128)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def huge_png() -> bytes:
    return flat_png((7000, 7000))


def _upload(actor, lesion, content: bytes, name: str = "huge.png"):
    # The same flat picture fills the quota: the duplicate warning is another file's subject.
    return services.image_upload(
        actor=actor,
        lesion=lesion,
        upload=SimpleUploadedFile(name, content, content_type="image/png"),
        submission_token=uuid.uuid4(),
        allow_duplicate=True,
    )


def test_a_7000_square_upload_is_kept_whole_and_analysed_at_2048_square(staff, lesion, huge_png):
    assert len(huge_png) < 200_000  # decodes to 147 MB of RGB
    analysis = _upload(staff, lesion, huge_png)
    image = analysis.image

    with image.file.open("rb") as stored:
        assert Image.open(stored).size == (7000, 7000)  # the original, as uploaded
    assert (image.width, image.height) == (7000, 7000)
    assert image_for_analysis(image).size == (2048, 2048)


def test_a_huge_images_heatmaps_are_stored_at_the_working_resolution(
    staff, doctor, lesion, huge_png, settings
):
    if not (Path(settings.ML_MODELS_ROOT) / "CURRENT").exists():
        pytest.skip("needs the trained model in ml/models/CURRENT")
    analysis = _upload(staff, lesion, huge_png)

    result = services.analysis_run(analysis_id=analysis.pk)
    if result.status == AnalysisStatus.NOT_ANALYSED:
        # The image gate rightly refuses a flat picture; a doctor has it analysed anyway, the
        # worker's full path with both heatmaps.
        services.analysis_override_gate(
            actor=doctor, analysis=result, reason="Checking the heatmap of a huge upload."
        )
        result = services.analysis_run(analysis_id=analysis.pk)

    assert result.status == AnalysisStatus.DONE, result.failure_reason
    for field in (result.heatmap_top, result.heatmap_melanoma):
        with field.open("rb") as stored:
            assert Image.open(stored).size == (2048, 2048)


def test_the_working_resolution_follows_the_setting(staff, lesion, settings):
    settings.ANALYSIS_MAX_PIXELS = 100 * 100
    analysis = _upload(staff, lesion, flat_png((400, 200)))
    width, height = image_for_analysis(analysis.image).size
    assert width * height <= 100 * 100 and abs(width / height - 2) < 0.05


@pytest.fixture
def quota(settings):
    settings.UPLOAD_QUOTA_PER_CLINIC_HOUR = 2
    return 2


def _fill_quota(staff, lesion, n: int) -> None:
    for _ in range(n):
        _upload(staff, lesion, flat_png((64, 64)))


def test_the_upload_past_the_clinics_hourly_quota_is_refused_and_stores_nothing(
    quota, staff, lesion
):
    _fill_quota(staff, lesion, quota)

    with pytest.raises(UploadQuotaExceeded) as refused:
        _upload(staff, lesion, flat_png((64, 64)))

    assert "Your clinic has uploaded 2 images in the past hour" in str(refused.value)
    assert "Uploads resume at" in str(refused.value)
    assert 0 < refused.value.retry_after_s <= 3600
    assert DermoscopicImage.objects.count() == quota


def test_uploads_resume_when_the_oldest_upload_counted_leaves_the_hour(quota, staff, lesion):
    now = timezone.now()

    def upload_at(minutes_ago: int) -> None:
        _upload(staff, lesion, flat_png((64, 64)))
        DermoscopicImage.objects.filter(pk=DermoscopicImage.objects.latest("pk").pk).update(
            uploaded_at=now - datetime.timedelta(minutes=minutes_ago)
        )

    for minutes_ago in (70, 50, 10):  # the first has left the hour
        upload_at(minutes_ago)

    with pytest.raises(UploadQuotaExceeded) as refused:
        _upload(staff, lesion, flat_png((64, 64)))

    # The two in the hour fill it; a place frees when the one from 50 minutes ago leaves it.
    assert 9 * 60 < refused.value.retry_after_s <= 10 * 60 + 1


def test_the_quota_is_per_clinic_and_per_hour(quota, staff, lesion, other_staff, other_clinic):
    _fill_quota(staff, lesion, quota)
    other_lesion = factories.LesionFactory(patient=factories.PatientFactory(clinic=other_clinic))
    _upload(other_staff, other_lesion, flat_png((64, 64)))  # another clinic: its own hour

    DermoscopicImage.objects.filter(lesion=lesion).update(
        uploaded_at=timezone.now() - datetime.timedelta(minutes=61)
    )
    _upload(staff, lesion, flat_png((64, 64)))  # the earlier ones have left the hour


def test_the_upload_page_answers_429_with_the_reason(quota, client, staff, patient, lesion):
    _fill_quota(staff, lesion, quota)
    client.force_login(staff)

    response = client.post(
        reverse("diagnosis:upload", args=[patient.pk]),
        {
            "lesion": lesion.pk,
            "submission_token": str(uuid.uuid4()),
            "image": SimpleUploadedFile("l.png", flat_png((64, 64)), content_type="image/png"),
        },
    )

    assert response.status_code == 429
    page = response.content.decode()
    assert "Your clinic has uploaded 2 images in the past hour" in page
    assert "Uploads resume at" in page
    assert DermoscopicImage.objects.count() == quota


def test_the_api_answers_429_with_the_reason_and_retry_after(quota, client, staff, lesion):
    _fill_quota(staff, lesion, quota)
    client.force_login(staff)

    response = client.post(
        reverse("api:lesion-images", args=[lesion.pk]),
        {"file": SimpleUploadedFile("l.png", flat_png((64, 64)), content_type="image/png")},
    )

    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "throttled"
    assert body["message"].startswith("Your clinic has uploaded 2 images in the past hour")
    assert 0 < int(response["Retry-After"]) <= 3600
    assert DermoscopicImage.objects.count() == quota


def test_a_repeated_submission_is_answered_even_when_the_quota_is_used(quota, staff, lesion):
    token = uuid.uuid4()
    first = services.image_upload(
        actor=staff,
        lesion=lesion,
        upload=SimpleUploadedFile("l.png", flat_png((64, 64)), content_type="image/png"),
        submission_token=token,
    )
    _fill_quota(staff, lesion, quota - 1)
    again = services.image_upload(
        actor=staff,
        lesion=lesion,
        upload=SimpleUploadedFile("l.png", flat_png((64, 64)), content_type="image/png"),
        submission_token=token,
    )
    assert again.pk == first.pk
