"""Uploading a dermoscopic image: every bad input gets a clear message and creates nothing."""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from diagnosis.image_validation import ImageRejected, clean_image
from diagnosis.models import Analysis, DermoscopicImage
from tests import factories


def upload_url(patient) -> str:
    return reverse("diagnosis:upload", args=[patient.pk])


def post_upload(client, patient, lesion, content: bytes, name: str = "lesion.jpg", token=None):
    data = {
        "lesion": lesion.pk if lesion is not None else "",
        "submission_token": str(token or uuid.uuid4()),
        "image": SimpleUploadedFile(name, content, content_type="image/jpeg"),
    }
    return client.post(upload_url(patient), data)


def gps_jpeg() -> bytes:
    """A JPEG carrying a camera make and a GPS position, as a phone writes them."""
    image = Image.new("RGB", (320, 240), (170, 110, 80))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "PhoneModel 12"  # Model
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 12.0, 30.0)
    gps[3] = "E"
    gps[4] = (16.0, 22.0, 10.0)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def assert_rejected(response, message_part: str) -> None:
    assert response.status_code == 400
    assert message_part in response.content.decode()
    assert DermoscopicImage.objects.count() == 0
    assert Analysis.objects.count() == 0


def test_valid_jpeg_creates_one_queued_analysis_and_redirects_to_it(staff_client, patient, lesion):
    response = post_upload(staff_client, patient, lesion, factories.jpeg_bytes())

    analysis = Analysis.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("diagnosis:analysis", args=[analysis.pk])
    assert analysis.status == "queued"
    assert analysis.image.lesion == lesion


def test_analysis_task_is_sent_only_after_the_upload_commits(
    staff_client, patient, lesion, django_capture_on_commit_callbacks, monkeypatch
):
    sent: list[int] = []
    monkeypatch.setattr(
        "diagnosis.tasks.analyse_image.apply_async",
        lambda args=(), kwargs=None, **kw: sent.append(args[0]),
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        post_upload(staff_client, patient, lesion, factories.jpeg_bytes())
        assert sent == []  # nothing reaches the broker inside the transaction

    for callback in callbacks:
        callback()
    assert sent == [Analysis.objects.get().pk]


def test_png_is_accepted_and_stored_as_png(staff_client, patient, lesion):
    buffer = io.BytesIO()
    Image.new("RGB", (100, 100), (10, 20, 30)).save(buffer, "PNG")

    post_upload(staff_client, patient, lesion, buffer.getvalue(), name="scan.png")

    assert DermoscopicImage.objects.get().content_type == "image/png"


def test_text_file_renamed_jpg_is_rejected(staff_client, patient, lesion):
    response = post_upload(staff_client, patient, lesion, b"just some notes\n" * 20)
    assert_rejected(response, "not a JPEG or PNG image")


def test_pdf_renamed_jpg_is_rejected(staff_client, patient, lesion):
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    response = post_upload(staff_client, patient, lesion, pdf)
    assert_rejected(response, "not a JPEG or PNG image")


def test_truncated_jpeg_is_rejected(staff_client, patient, lesion):
    whole = factories.jpeg_bytes((400, 300))
    response = post_upload(staff_client, patient, lesion, whole[: len(whole) // 2])
    assert_rejected(response, "damaged or incomplete")


def test_empty_file_is_rejected(staff_client, patient, lesion):
    response = post_upload(staff_client, patient, lesion, b"")
    assert_rejected(response, "The file is empty (0 bytes)")


def test_file_over_20_mb_is_rejected(staff_client, patient, lesion):
    response = post_upload(staff_client, patient, lesion, b"\xff\xd8" + b"\0" * (20 * 2**20 + 1))
    assert_rejected(response, "the limit is 20 MB")


def test_image_over_50_megapixels_is_rejected(staff_client, patient, lesion):
    buffer = io.BytesIO()
    # 8000 x 7000 = 56 MP of one colour: a few hundred kB on disk, far over the pixel limit.
    Image.new("L", (8000, 7000), 0).save(buffer, "PNG")
    response = post_upload(staff_client, patient, lesion, buffer.getvalue(), name="huge.png")
    assert_rejected(response, "the limit is 50 megapixels")


def test_missing_lesion_is_rejected_with_a_message(staff_client, patient, lesion):
    response = post_upload(staff_client, patient, None, factories.jpeg_bytes())
    assert_rejected(response, "Choose the lesion this image shows")


def test_lesion_of_another_patient_is_rejected(staff_client, patient, clinic):
    someone_else = factories.LesionFactory(patient=factories.PatientFactory(clinic=clinic))
    response = post_upload(staff_client, patient, someone_else, factories.jpeg_bytes())
    assert_rejected(response, "not one of this patient")


def test_no_file_at_all_is_rejected(staff_client, patient, lesion):
    response = staff_client.post(
        upload_url(patient), {"lesion": lesion.pk, "submission_token": str(uuid.uuid4())}
    )
    assert_rejected(response, "Choose an image file or take a photo")


def test_rejected_upload_keeps_the_chosen_lesion_selected(staff_client, patient, lesion):
    response = post_upload(staff_client, patient, lesion, b"not an image")
    assert f'<option value="{lesion.pk}" selected>' in response.content.decode()


def test_double_submit_with_one_token_creates_one_analysis(staff_client, patient, lesion):
    token = uuid.uuid4()
    first = post_upload(staff_client, patient, lesion, factories.jpeg_bytes(), token=token)
    second = post_upload(staff_client, patient, lesion, factories.jpeg_bytes(), token=token)

    assert Analysis.objects.count() == 1
    assert DermoscopicImage.objects.count() == 1
    assert first["Location"] == second["Location"]


def test_two_forms_create_two_analyses(staff_client, patient, lesion):
    # Two different pictures: the same one twice is warned about (test_duplicates.py).
    post_upload(staff_client, patient, lesion, factories.jpeg_bytes(color=(150, 90, 60)))
    post_upload(staff_client, patient, lesion, factories.jpeg_bytes(color=(120, 70, 50)))
    assert Analysis.objects.count() == 2


def test_exif_and_gps_are_stripped_before_storage(staff_client, patient, lesion):
    original = gps_jpeg()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # the fixture has GPS

    post_upload(staff_client, patient, lesion, original)

    stored = DermoscopicImage.objects.get()
    with stored.file.open("rb") as handle:
        data = handle.read()
    kept = Image.open(io.BytesIO(data))
    assert len(kept.getexif()) == 0
    assert b"PhoneMaker" not in data and b"GPS" not in data
    assert "exif" not in kept.info


def test_upload_form_offers_file_and_camera_with_a_fresh_token(staff_client, patient, lesion):
    first = staff_client.get(upload_url(patient)).content.decode()
    second = staff_client.get(upload_url(patient)).content.decode()

    assert 'accept="image/*"' in first and 'capture="environment"' in first
    token = first.split('name="submission_token" value="')[1][:36]
    assert uuid.UUID(token)
    assert token not in second


def test_validator_reads_no_further_than_the_limit():
    class Endless(io.RawIOBase):
        read_calls = 0

        def seek(self, offset, whence=0):
            return 0

        def read(self, n=-1):
            Endless.read_calls += 1
            assert n != -1, "the validator must bound its read"
            return b"\0" * n

    with pytest.raises(ImageRejected, match="limit is 1 MB"):
        clean_image(Endless(), max_bytes=2**20, max_pixels=50_000_000)
