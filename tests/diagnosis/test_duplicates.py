"""The same file (sha256) or the same picture re-encoded (perceptual hash) is warned about
before it is stored twice: on the same lesion, on another lesion of the patient, and on another
patient (perhaps the wrong patient). Never across clinics."""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from accounts.models import AuditEvent
from diagnosis import image_fingerprint, services
from diagnosis.models import Analysis, DermoscopicImage
from tests import factories

MEL = factories.SAMPLES / "mel_ISIC_0024481.jpg"
NEVUS = factories.SAMPLES / "nv_ISIC_0024319.jpg"


def reencoded(path, *, quality: int = 60, scale: float = 1.5) -> bytes:
    """The picture of `path` as another program might save it: resized, recompressed."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        image = image.resize((int(image.width * scale), int(image.height * scale)))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def upload(actor, lesion, content: bytes, **kwargs) -> Analysis:
    file = SimpleUploadedFile("lesion.jpg", content, content_type="image/jpeg")
    return services.image_upload(actor=actor, lesion=lesion, upload=file, **kwargs)


def test_the_same_file_on_the_same_lesion_is_warned_about_and_not_stored(staff, lesion):
    first = upload(staff, lesion, MEL.read_bytes())

    with pytest.raises(services.DuplicateImage) as warned:
        upload(staff, lesion, MEL.read_bytes())

    (match,) = warned.value.matches
    assert (match.image_id, match.where, match.exact) == (first.image_id, "lesion", True)
    assert "This file was already uploaded for this lesion on" in warned.value.messages[0]
    assert DermoscopicImage.objects.count() == 1


def test_the_same_picture_reencoded_is_warned_about(staff, lesion):
    upload(staff, lesion, MEL.read_bytes())

    with pytest.raises(services.DuplicateImage) as warned:
        upload(staff, lesion, reencoded(MEL))

    (match,) = warned.value.matches
    assert match.where == "lesion" and not match.exact
    assert "looks like the same picture" in warned.value.messages[0]


def test_uploading_anyway_stores_it_and_the_audit_names_what_it_matched(staff, lesion):
    first = upload(staff, lesion, MEL.read_bytes())

    second = upload(staff, lesion, MEL.read_bytes(), allow_duplicate=True)

    assert second.image_id != first.image_id
    event = AuditEvent.objects.filter(action="image.upload").latest("pk")
    assert event.detail["duplicate_of"] == [first.image_id]


def test_the_same_picture_on_another_patient_may_be_the_wrong_patient(staff, clinic, lesion):
    other = factories.LesionFactory(patient=factories.PatientFactory(clinic=clinic))
    upload(staff, other, reencoded(MEL, quality=90, scale=1.0))

    with pytest.raises(services.DuplicateImage) as warned:
        upload(staff, lesion, MEL.read_bytes())

    (match,) = warned.value.matches
    assert match.where == "other"
    assert "may be filed on the wrong patient" in warned.value.messages[0]
    # No other patient is named.
    assert other.patient.last_name not in warned.value.messages[0]


def test_the_same_picture_on_another_lesion_of_the_patient_is_named_as_such(staff, patient, lesion):
    upload(staff, factories.LesionFactory(patient=patient), MEL.read_bytes())

    with pytest.raises(services.DuplicateImage) as warned:
        upload(staff, lesion, MEL.read_bytes())

    assert warned.value.matches[0].where == "patient"


def test_different_pictures_and_another_clinics_copy_raise_no_warning(staff, lesion, other_clinic):
    elsewhere = factories.LesionFactory(patient=factories.PatientFactory(clinic=other_clinic))
    upload(factories.UserFactory(clinic=other_clinic), elsewhere, MEL.read_bytes())
    upload(staff, lesion, NEVUS.read_bytes())

    upload(staff, lesion, MEL.read_bytes())  # no DuplicateImage

    assert DermoscopicImage.objects.filter(lesion=lesion).count() == 2


def test_flat_pictures_are_not_near_duplicates_of_each_other(staff, lesion):
    upload(staff, lesion, factories.jpeg_bytes(color=(150, 90, 60)))
    upload(staff, lesion, factories.jpeg_bytes(color=(90, 60, 150)))  # no DuplicateImage
    assert not image_fingerprint.is_informative(DermoscopicImage.objects.first().perceptual_hash)


def test_hash_distances_separate_reencodings_from_other_lesions():
    def hash_of(content: bytes) -> str:
        with Image.open(io.BytesIO(content)) as image:
            return image_fingerprint.difference_hash(image.convert("RGB"))

    original = hash_of(MEL.read_bytes())
    words = image_fingerprint.as_words([hash_of(reencoded(MEL)), hash_of(NEVUS.read_bytes())])

    same, other = image_fingerprint.distances(original, words)
    assert same <= image_fingerprint.SAME_PATIENT_MAX_BITS
    assert other > 2 * image_fingerprint.SAME_PATIENT_MAX_BITS


def test_upload_page_warns_and_offers_to_upload_anyway(client, staff, patient, lesion):
    upload(staff, lesion, MEL.read_bytes())
    client.force_login(staff)
    url = reverse("diagnosis:upload", args=[patient.pk])
    data = {"lesion": lesion.pk, "submission_token": str(uuid.uuid4())}

    warned = client.post(url, data | {"image": SimpleUploadedFile("a.jpg", MEL.read_bytes())})
    body = warned.content.decode()

    assert warned.status_code == 400
    assert 'id="duplicate-warning"' in body and "Nothing was stored" in body
    assert 'type="checkbox" name="allow_duplicate"' in body
    assert DermoscopicImage.objects.count() == 1
    assert AuditEvent.objects.filter(action="image.duplicate_warning").count() == 1

    stored = client.post(
        url,
        data | {"image": SimpleUploadedFile("a.jpg", MEL.read_bytes()), "allow_duplicate": "on"},
    )

    assert stored.status_code == 302
    assert DermoscopicImage.objects.count() == 2


def test_api_answers_409_with_the_warnings_and_stores_with_allow_duplicate(client, staff, lesion):
    upload(staff, lesion, MEL.read_bytes())
    client.force_login(staff)
    url = reverse("api:lesion-images", args=[lesion.pk])

    refused = client.post(url, {"file": SimpleUploadedFile("a.jpg", MEL.read_bytes())})
    accepted = client.post(
        url, {"file": SimpleUploadedFile("a.jpg", MEL.read_bytes()), "allow_duplicate": "true"}
    )

    assert refused.status_code == 409
    assert "already uploaded for this lesion" in str(refused.json())
    assert refused.json()["duplicates"][0]["where"] == "lesion"
    assert accepted.status_code == 202
