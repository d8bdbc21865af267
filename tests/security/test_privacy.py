"""Privacy: retention of original images, patients' export and erasure, encryption at rest,
and production settings that pass Django's deployment checks."""

from __future__ import annotations

import base64
import datetime
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from diagnosis.models import Analysis, DermoscopicImage, Lesion
from diagnosis.services.image import images_purge_expired
from melanoma_portal.storage import EncryptedFileSystemStorage
from patients.models import Patient
from patients.services import rights
from tests import factories

REPO = Path(__file__).resolve().parent.parent.parent


def _aged_image(clinic, days: int) -> DermoscopicImage:
    image = factories.DermoscopicImageFactory(
        lesion__patient__clinic=clinic, thumbnail=ContentFile(b"thumb", name="t.jpg")
    )
    DermoscopicImage.objects.filter(pk=image.pk).update(
        uploaded_at=timezone.now() - datetime.timedelta(days=days)
    )
    image.refresh_from_db()
    return image


# --- retention -------------------------------------------------------------------------------


def test_originals_past_retention_are_deleted_and_result_and_thumbnail_kept(
    clinic, django_capture_on_commit_callbacks
):
    clinic.image_retention_days = 30
    clinic.save()
    old = _aged_image(clinic, days=31)
    analysis = factories.DoneAnalysisFactory(image=old)
    young = _aged_image(clinic, days=29)
    old_path = Path(old.file.path)

    with django_capture_on_commit_callbacks(execute=True):
        assert images_purge_expired() == 1

    old.refresh_from_db()
    assert not old.file and old.original_deleted_at is not None
    assert not old_path.exists()
    assert old.thumbnail and Path(old.thumbnail.path).exists()
    assert Analysis.objects.get(pk=analysis.pk).probabilities  # the result stays
    assert young.file and Path(young.file.path).exists()
    assert AuditEvent.objects.filter(
        action="image.retention_delete", object_id=str(old.pk)
    ).exists()


def test_thumbnail_goes_too_when_the_clinic_keeps_none(clinic, django_capture_on_commit_callbacks):
    clinic.image_retention_days = 10
    clinic.keep_thumbnails = False
    clinic.save()
    image = _aged_image(clinic, days=11)
    with django_capture_on_commit_callbacks(execute=True):
        images_purge_expired()
    image.refresh_from_db()
    assert not image.file and not image.thumbnail


def test_purge_is_idempotent_and_respects_each_clinic(clinic, other_clinic):
    clinic.image_retention_days = 30
    clinic.save()
    other_clinic.image_retention_days = 365
    other_clinic.save()
    _aged_image(clinic, days=40)
    kept = _aged_image(other_clinic, days=40)
    assert images_purge_expired() == 1
    assert images_purge_expired() == 0
    kept.refresh_from_db()
    assert kept.file and kept.original_deleted_at is None


# --- patient rights --------------------------------------------------------------------------


@pytest.fixture
def patient_with_records(patient):
    analysis = factories.DoneAnalysisFactory(image__lesion__patient=patient)
    factories.ReviewFactory(analysis=analysis)
    return patient, analysis


def test_export_holds_the_record_images_and_results_and_is_audited(
    client, doctor, patient_with_records
):
    patient, analysis = patient_with_records
    client.force_login(doctor)
    response = client.get(reverse("patient_rights:export", args=[patient.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Cache-Control"] == "no-store"
    document = json.loads(response.content)
    assert document["records"]["patients.patient"][0]["mrn"] == patient.mrn
    image = document["records"]["diagnosis.dermoscopicimage"][0]
    with analysis.image.file.open("rb") as handle:
        assert base64.b64decode(image["file"]["base64"]) == handle.read()
    assert document["records"]["diagnosis.analysis"][0]["top_class"] == "mel"
    assert len(document["records"]["diagnosis.review"]) == 1
    assert AuditEvent.objects.filter(action="patient.export", patient_id=patient.pk).exists()


def test_staff_cannot_export(staff, patient):
    with pytest.raises(PermissionDenied):
        rights.patient_export(actor=staff, patient=patient)


def test_erase_with_wrong_mrn_erases_nothing(clinic_admin, patient_with_records):
    patient, _ = patient_with_records
    with pytest.raises(ValidationError, match="does not match"):
        rights.patient_erase(actor=clinic_admin, patient=patient, confirm_mrn="WRONG")
    assert Patient.objects.filter(pk=patient.pk).exists()


def test_erase_removes_every_record_and_file_and_leaves_a_tombstone(
    client, clinic_admin, patient_with_records, django_capture_on_commit_callbacks
):
    patient, analysis = patient_with_records
    files = [Path(analysis.image.file.path), Path(analysis.heatmap_top.path)]
    client.force_login(clinic_admin)
    url = reverse("patient_rights:erase", args=[patient.pk])
    assert client.get(url).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"confirm_mrn": patient.mrn, "reason": "GDPR request"})
    assert response.status_code == 302
    assert not Patient.objects.filter(pk=patient.pk).exists()
    assert not Lesion.objects.filter(patient_id=patient.pk).exists()
    assert not Analysis.objects.filter(pk=analysis.pk).exists()
    assert not any(path.exists() for path in files)
    tombstone = AuditEvent.objects.get(action="patient.erase")
    assert tombstone.patient_id == patient.pk and tombstone.user_email == clinic_admin.email
    text = json.dumps(tombstone.detail)
    assert patient.mrn not in text and patient.last_name not in text and "mel" not in text


def test_erase_form_with_wrong_mrn_shows_a_message(client, clinic_admin, patient):
    client.force_login(clinic_admin)
    response = client.post(
        reverse("patient_rights:erase", args=[patient.pk]), {"confirm_mrn": "nope"}
    )
    assert response.status_code == 400 and "does not match" in response.content.decode()
    assert Patient.objects.filter(pk=patient.pk).exists()


def test_doctor_cannot_erase(doctor, patient):
    with pytest.raises(PermissionDenied):
        rights.patient_erase(actor=doctor, patient=patient, confirm_mrn=patient.mrn)


# --- encryption at rest ----------------------------------------------------------------------


def test_encrypted_storage_keeps_ciphertext_on_disk_and_returns_plaintext(tmp_path):
    key = Fernet.generate_key().decode()
    storage = EncryptedFileSystemStorage(location=tmp_path, key=key)
    photo = factories.jpeg_bytes()
    name = storage.save("images/a.jpg", ContentFile(photo))
    on_disk = (tmp_path / name).read_bytes()
    assert on_disk != photo and b"JFIF" not in on_disk
    with storage.open(name) as handle:
        assert handle.read() == photo


def test_encrypted_storage_reads_files_stored_before_encryption(tmp_path):
    (tmp_path / "old.jpg").write_bytes(factories.jpeg_bytes())
    storage = EncryptedFileSystemStorage(location=tmp_path, key=Fernet.generate_key().decode())
    with storage.open("old.jpg") as handle:
        assert handle.read() == factories.jpeg_bytes()


def test_rotated_key_still_decrypts_older_files(tmp_path):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    name = EncryptedFileSystemStorage(location=tmp_path, key=old_key).save(
        "a.jpg", ContentFile(b"\xff\xd8photo")
    )
    rotated = EncryptedFileSystemStorage(location=tmp_path, key=f"{new_key},{old_key}")
    with rotated.open(name) as handle:
        assert handle.read() == b"\xff\xd8photo"


def test_uploaded_image_is_encrypted_on_disk_when_a_key_is_set(settings, staff, lesion):
    from django.core.files.storage import storages
    from django.core.files.uploadedfile import SimpleUploadedFile

    from diagnosis.services import image as services

    settings.IMAGE_ENCRYPTION_KEY = Fernet.generate_key().decode()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "melanoma_portal.storage.EncryptedFileSystemStorage"},
    }
    storages._storages = {}
    try:
        from diagnosis.models import DermoscopicImage as Model

        for field_name in ("file", "thumbnail"):
            Model._meta.get_field(field_name).storage = storages["default"]
        upload = SimpleUploadedFile("a.jpg", factories.jpeg_bytes(), content_type="image/jpeg")
        analysis = services.image_upload(actor=staff, lesion=lesion, upload=upload)
        image = analysis.image
        raw = Path(settings.MEDIA_ROOT, image.file.name).read_bytes()
        assert raw.startswith(b"gAAAAA")
        assert services._open_image(image).size == (200, 150)  # the worker reads it in clear
    finally:
        from django.core.files.storage import default_storage

        storages._storages = {}
        for field_name in ("file", "thumbnail"):
            Model._meta.get_field(field_name).storage = default_storage


# --- deployment ------------------------------------------------------------------------------


def _production_env(**overrides: str) -> dict[str, str]:
    """The environment production needs: its own secret, its host names, the shared cache, the
    key images are encrypted with."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "melanoma_portal.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
        "DJANGO_ALLOWED_HOSTS": "portal.example.org",
        "CACHE_URL": "redis://127.0.0.1:6379/15",
        "IMAGE_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        **overrides,
    }
    env.pop("AWS_STORAGE_BUCKET_NAME", None)
    return env


def _check_deploy(**overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=_production_env(**overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy_with_no_warnings():
    result = _check_deploy()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "IMAGE_ENCRYPTION_KEY" not in result.stderr


def test_production_refuses_to_start_without_a_real_secret_key():
    env = _production_env(DJANGO_SECRET_KEY="short")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


def test_production_refuses_to_start_without_the_shared_cache():
    # Lock-out and throttle counters in one process's memory would give every web process its
    # own count (issue 11).
    env = _production_env(CACHE_URL="")
    env.pop("REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0 and "CACHE_URL must name the shared Redis cache" in result.stderr


def test_production_without_an_image_key_warns_at_start_and_fails_check_deploy():
    result = _check_deploy(IMAGE_ENCRYPTION_KEY="")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "diagnosis.W001" in output
    assert "patient images and heatmaps are stored unencrypted" in output
    # Said at start too, by every production process (web, worker, beat), not only by checks.
    assert "IMAGE_ENCRYPTION_KEY is not set: patient images and heatmaps are written to" in (
        result.stderr
    )


def test_an_encrypted_volume_silences_the_image_key_warning_by_its_id_alone():
    result = _check_deploy(IMAGE_ENCRYPTION_KEY="", DJANGO_SILENCED_SYSTEM_CHECKS="diagnosis.W001")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "IMAGE_ENCRYPTION_KEY" not in result.stderr


def test_stored_images_are_readable_by_owner_and_group_only(staff, lesion):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from diagnosis.services.image import image_upload

    analysis = image_upload(
        actor=staff,
        lesion=lesion,
        upload=SimpleUploadedFile("l.jpg", factories.jpeg_bytes(), content_type="image/jpeg"),
    )
    image = analysis.image
    for stored in (image.file, image.thumbnail):
        path = Path(stored.path)
        assert path.stat().st_mode & 0o777 == 0o640, f"{path} is {path.stat().st_mode & 0o777:o}"
        assert path.parent.stat().st_mode & 0o007 == 0, f"{path.parent} is open to others"


def test_sqlite_database_and_var_are_created_without_access_for_others(tmp_path):
    """Whatever umask the shell had (022 here, the usual default), the portal's own is used."""
    var = tmp_path / "var"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "melanoma_portal.settings.dev",
        "PORTAL_VAR_DIR": str(var),
        "DATABASE_URL": f"sqlite:///{var / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_RESULT_BACKEND": f"file://{var / 'celery-results'}",
    }
    env.pop("PORTAL_UMASK", None)
    result = subprocess.run(
        ["bash", "-c", f"umask 022 && exec {sys.executable} manage.py migrate --noinput"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    database = var / "db.sqlite3"
    assert database.stat().st_mode & 0o777 == 0o640
    for folder in (var, var / "celery-broker"):
        assert folder.stat().st_mode & 0o777 == 0o750, f"{folder}"
