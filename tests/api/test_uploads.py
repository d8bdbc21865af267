"""Image upload through the API: 202 with a status URL, and the portal's own validation."""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.models import AuditEvent
from diagnosis.models import Analysis, DermoscopicImage
from tests.factories import jpeg_bytes


def upload(client, lesion, content: bytes, name: str = "lesion.jpg", **extra):
    return client.post(
        f"/api/v1/lesions/{lesion.pk}/images/",
        {"file": SimpleUploadedFile(name, content, content_type="image/jpeg"), **extra},
        format="multipart",
    )


def png_bytes(size=(64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def test_upload_answers_202_with_analysis_id_and_status_url(api, staff, lesion):
    response = upload(api, lesion, jpeg_bytes())

    assert response.status_code == 202, response.content
    body = response.json()
    analysis = Analysis.objects.get(pk=body["analysis_id"])
    assert analysis.image.lesion == lesion
    assert analysis.image.uploaded_by == staff
    assert body["status"] == "queued"
    assert body["status_url"] == f"http://testserver/api/v1/analyses/{analysis.pk}/"
    assert response["Location"] == body["status_url"]
    assert AuditEvent.objects.filter(action="image.upload", patient_id=lesion.patient_id).exists()


def test_status_url_answers_the_queued_analysis(api, lesion):
    status_url = upload(api, lesion, png_bytes()).json()["status_url"]

    polled = api.get(status_url)

    assert polled.status_code == 200
    assert polled.json()["status"] == "queued"
    assert polled.json()["result"] is None
    assert polled.json()["queue_position"] == 1


def test_same_submission_token_twice_is_one_analysis(api, lesion):
    token = str(uuid.uuid4())

    first = upload(api, lesion, jpeg_bytes(), submission_token=token).json()
    second = upload(api, lesion, jpeg_bytes(), submission_token=token).json()

    assert first["analysis_id"] == second["analysis_id"]
    assert Analysis.objects.count() == 1


def test_non_image_is_415_and_stores_nothing(api, lesion):
    response = upload(api, lesion, b"%PDF-1.4 not a photo", name="scan.jpg")

    assert response.status_code == 415
    assert "not a JPEG or PNG" in response.json()["message"]
    assert not DermoscopicImage.objects.exists()


def test_gif_is_415_naming_its_type(api, lesion):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buffer, "GIF")

    response = upload(api, lesion, buffer.getvalue(), name="x.gif")

    assert response.status_code == 415
    assert "GIF" in response.json()["message"]


def test_file_over_the_size_limit_is_413(api, lesion, settings):
    settings.UPLOAD_MAX_BYTES = 1000

    response = upload(api, lesion, jpeg_bytes((400, 400)))

    assert response.status_code == 413
    assert "limit" in response.json()["message"]
    assert not DermoscopicImage.objects.exists()


def test_image_with_too_many_pixels_is_413(api, lesion, settings):
    settings.UPLOAD_MAX_PIXELS = 100 * 100

    response = upload(api, lesion, png_bytes((300, 300)))

    assert response.status_code == 413
    assert "megapixels" in response.json()["message"]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (jpeg_bytes((16, 16)), "at least 32x32"),
    ],
)
def test_unusable_image_is_400_with_the_reason(api, lesion, content, words):
    response = upload(api, lesion, content)

    assert response.status_code == 400
    assert words in response.json()["message"]


def test_truncated_jpeg_is_400_even_after_a_pdf_was_rendered(api, lesion):
    import weasyprint  # noqa: F401 - what the report service imports in the same process

    response = upload(api, lesion, jpeg_bytes()[:-100])

    assert response.status_code == 400
    assert "damaged" in response.json()["message"]


def test_jpeg_cut_inside_its_header_is_400(api, lesion):
    response = upload(api, lesion, jpeg_bytes()[:400])

    assert response.status_code == 400
    assert "damaged" in response.json()["message"]


def test_missing_file_is_400(api, lesion):
    response = api.post(f"/api/v1/lesions/{lesion.pk}/images/", {}, format="multipart")

    assert response.status_code == 400
    assert response.json()["errors"]["file"] == ["No file was submitted."]


def test_json_body_is_415(api, lesion):
    response = api.post(f"/api/v1/lesions/{lesion.pk}/images/", {"file": "x"}, format="json")

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_upload_to_other_clinics_lesion_is_404(other_api, lesion):
    response = upload(other_api, lesion, jpeg_bytes())

    assert response.status_code == 404
    assert not DermoscopicImage.objects.exists()
