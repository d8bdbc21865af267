"""Patient files in S3, against a real S3 API server (moto's, started by the tests): upload,
the worker's analysis reading from the bucket, the image views, the PDF, the export, the
retention purge and erasure, which leaves no object behind."""

from __future__ import annotations

import hashlib
import io
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from diagnosis import services
from diagnosis.models import Analysis, AnalysisStatus, DermoscopicImage
from patients.services.rights import patient_erase
from tests import factories
from tests.s3 import S3Bucket
from tests.worker import celery_worker, require_shared_services, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SAMPLE = Path(settings.BASE_DIR) / "samples" / "mel_ISIC_0024481.jpg"


def _upload(staff, lesion) -> Analysis:
    upload = SimpleUploadedFile(SAMPLE.name, SAMPLE.read_bytes(), content_type="image/jpeg")
    # One sample for two patients: the wrong-patient warning is another file's subject.
    return services.image_upload(actor=staff, lesion=lesion, upload=upload, allow_duplicate=True)


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_storage_from_a_bucket_name_is_private_encrypted_s3_without_urls(s3_bucket):
    setting = s3_bucket.storage_setting()
    assert setting["BACKEND"] == "melanoma_portal.storage_s3.EncryptedS3Storage"
    assert setting["OPTIONS"]["default_acl"] == "private"
    assert setting["OPTIONS"]["object_parameters"] == {"ServerSideEncryption": "AES256"}
    name = default_storage.save("probe/a.txt", io.BytesIO(b"patient data"))
    with pytest.raises(ValueError, match="no URL"):
        default_storage.url(name)


def test_upload_analysis_views_pdf_export_purge_and_erasure_all_work_on_s3(
    s3_bucket, client, tmp_path
):
    require_shared_services()
    if not (Path(settings.ML_MODELS_ROOT) / "CURRENT").exists():
        pytest.skip(f"no trained model installed: {settings.ML_MODELS_ROOT}/CURRENT is missing")
    clinic = factories.ClinicFactory()
    staff = factories.UserFactory(clinic=clinic)
    admin = factories.ClinicAdminFactory(clinic=clinic)
    kept, erased = (factories.PatientFactory(clinic=clinic) for _ in range(2))
    kept_lesion = factories.LesionFactory(patient=kept)
    erased_lesion = factories.LesionFactory(patient=erased)

    # Upload: the original and its thumbnail go to the bucket, private, encrypted twice over.
    with celery_worker(purge=True, env=s3_bucket.env, media_root=tmp_path / "no-media") as w:
        analyses = [_upload(staff, kept_lesion), _upload(staff, erased_lesion)]
        for analysis in analyses:
            wait_for(
                lambda a=analysis: _finished(a),
                timeout=180,
                message=f"no result:\n{w.log()[-3000:]}",
            )
    assert not (tmp_path / "no-media").exists()  # the worker wrote nothing to its disk
    for analysis in analyses:
        analysis.refresh_from_db()
        assert analysis.status == AnalysisStatus.DONE, analysis.failure_reason
    image = analyses[0].image
    names = {
        image.file.name,
        image.thumbnail.name,
        analyses[0].heatmap_top.name,
        analyses[0].heatmap_melanoma.name,
    }
    keys = s3_bucket.keys()
    assert names <= keys and len(keys) == 8  # 2 images x (original, thumbnail, 2 heatmaps)
    s3 = s3_bucket.client()
    for key in keys:
        head = s3.head_object(Bucket=s3_bucket.name, Key=key)
        assert head["ServerSideEncryption"] == "AES256"
        grants = s3.get_object_acl(Bucket=s3_bucket.name, Key=key)["Grants"]
        assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
        assert "URI" not in grants[0]["Grantee"]  # the owner only; no AllUsers grant
        assert s3_bucket.read(key).startswith(b"gAAAAA")  # ciphertext: no image in the clear
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(f"{s3_bucket.endpoint}/{s3_bucket.name}/{image.file.name}")  # noqa: S310
    assert anonymous.value.code == 403

    # The clinic-checked views stream the decrypted files, never cached.
    client.force_login(staff)
    response = client.get(reverse("diagnosis:image", args=[image.pk]))
    assert response.status_code == 200 and response["Cache-Control"] == "no-store, private"
    assert hashlib.sha256(_body(response)).hexdigest() == image.sha256
    response = client.get(reverse("diagnosis:heatmap", args=[analyses[0].pk, "top"]))
    assert response.status_code == 200 and _body(response).startswith(b"\x89PNG")
    other_clinic_staff = factories.UserFactory(clinic=factories.ClinicFactory())
    client.force_login(other_clinic_staff)
    assert client.get(reverse("diagnosis:image", args=[image.pk])).status_code == 404

    # The PDF embeds the images read from the bucket; the export carries the original.
    client.force_login(admin)
    response = client.get(reverse("reports:analysis_pdf", args=[analyses[0].pk]))
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    pages = PdfReader(io.BytesIO(response.content)).pages
    assert sum(len(page.images) for page in pages) >= 3  # the original and two heatmaps
    response = client.get(reverse("patient_rights:export", args=[kept.pk]))
    exported = json.loads(response.content)["records"]["diagnosis.dermoscopicimage"][0]["file"]
    assert hashlib.sha256(_base64(exported["base64"])).hexdigest() == image.sha256

    # Retention: the original goes from the bucket, the thumbnail and heatmaps stay.
    clinic.image_retention_days = 1
    clinic.save()
    later = timezone.now() + timezone.timedelta(days=2)
    assert services.images_purge_expired(now=later) == 2
    keys = s3_bucket.keys()
    assert image.file.name not in keys and image.thumbnail.name in keys and len(keys) == 6

    # Erasure: nothing of the patient is left in the bucket.
    erased_image = DermoscopicImage.objects.get(lesion=erased_lesion)
    erased_names = {erased_image.thumbnail.name}
    erased_names |= {
        name
        for a in erased_image.analyses.all()
        for name in (a.heatmap_top.name, a.heatmap_melanoma.name)
    }
    patient_erase(actor=admin, patient=erased, confirm_mrn=erased.mrn)
    keys = s3_bucket.keys()
    assert not (erased_names & keys) and len(keys) == 3  # the kept patient's three remain


def _finished(analysis: Analysis) -> bool:
    analysis.refresh_from_db()
    return analysis.status in (AnalysisStatus.DONE, AnalysisStatus.FAILED)


def _base64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)


def test_readyz_says_storage_ok_for_the_bucket_and_names_one_that_does_not_exist(
    s3_bucket, client, settings
):
    assert client.get("/readyz").json()["checks"]["storage"] == "ok"

    missing = S3Bucket(s3_bucket.endpoint, "portal-never-created")
    settings.STORAGES = {**settings.STORAGES, "default": missing.storage_setting()}
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["storage"].startswith(
        "the storage bucket 'portal-never-created' is unreachable"
    )
