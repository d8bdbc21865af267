"""deploy/backup and deploy/restore, run as an administrator runs them: a populated portal
(PostgreSQL, and its files in an S3 bucket or on disk, encrypted by the portal) is backed up,
restored into a fresh database and a fresh bucket or folder, and every row of every table and
every image's sha256 come back."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils.module_loading import import_string

from diagnosis import services
from melanoma_portal.settings.base import default_storage_from_env
from tests import factories
from tests.s3 import S3Bucket
from tests.worker import REPO_ROOT, purge_queues, require_shared_services
from tests.worker import test_database_url as database_url  # not collected as a test

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SAMPLES = sorted((Path(settings.BASE_DIR) / "samples").glob("*.jpg"))[:3]


def _populate() -> None:
    clinic = factories.ClinicFactory()
    staff = factories.UserFactory(clinic=clinic)
    for sample in SAMPLES:
        lesion = factories.LesionFactory(patient=factories.PatientFactory(clinic=clinic))
        upload = SimpleUploadedFile(sample.name, sample.read_bytes(), content_type="image/jpeg")
        analysis = services.image_upload(actor=staff, lesion=lesion, upload=upload)  # audited
        factories.ReviewFactory(analysis=factories.DoneAnalysisFactory(image=analysis.image))
    purge_queues()  # no worker here: the uploads' analyses stay queued in the database


def _rows(database_url: str) -> dict[str, list[str]]:
    """Every table's rows, each as the md5 of its text form, sorted: equal iff same rows."""
    with psycopg.connect(database_url) as db:
        tables = [
            name
            for (name,) in db.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        return {
            table: sorted(md5 for (md5,) in db.execute(f'SELECT md5(t::text) FROM "{table}" t'))  # noqa: S608
            for table in tables
        }


def _run(script: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        [str(REPO_ROOT / "deploy" / script), str(folder)],
        env={**os.environ, "PORTAL_PYTHON": sys.executable, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def fresh_database():
    name = f"{connection.settings_dict['NAME']}_restored_{uuid.uuid4().hex[:8]}"
    admin_url = database_url()
    with psycopg.connect(admin_url, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin_url, autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("where", ["s3", "disk"])
def test_backup_restores_every_row_and_every_file_into_a_fresh_database_and_storage(
    where, request, settings, tmp_path, fresh_database
):
    require_shared_services()
    key = Fernet.generate_key().decode()
    if where == "s3":
        source = request.getfixturevalue("s3_bucket")
        key = source.extra_env["IMAGE_ENCRYPTION_KEY"]
        source_env = source.env
        target = S3Bucket.create(source.endpoint, IMAGE_ENCRYPTION_KEY=key)
        target_env = target.env
    else:
        settings.IMAGE_ENCRYPTION_KEY = key
        settings.STORAGES = {
            **settings.STORAGES,
            "default": default_storage_from_env({"IMAGE_ENCRYPTION_KEY": key}),
        }
        source_env = {"MEDIA_ROOT": str(settings.MEDIA_ROOT), "IMAGE_ENCRYPTION_KEY": key}
        target_env = {"MEDIA_ROOT": str(tmp_path / "restored-media"), "IMAGE_ENCRYPTION_KEY": key}
    _populate()
    base_env = {"DJANGO_SETTINGS_MODULE": "melanoma_portal.settings.test"}
    backup = tmp_path / "backup"

    made = _run("backup", backup, {**base_env, **source_env, "DATABASE_URL": database_url()})
    assert made.returncode == 0, made.stderr
    assert "keep the key apart" in made.stdout
    restored = _run("restore", backup, {**base_env, **target_env, "DATABASE_URL": fresh_database})
    assert restored.returncode == 0, restored.stderr

    before, after = _rows(database_url()), _rows(fresh_database)
    assert after == before
    for table in ("patients_patient", "diagnosis_analysis", "diagnosis_review"):
        assert len(after[table]) >= len(SAMPLES), table
    assert len(after["accounts_auditevent"]) >= len(SAMPLES)
    # Every image reads back, decrypted with the same key, with the sha256 it was uploaded with.
    storage_setting = default_storage_from_env(target_env)
    restored_storage = import_string(storage_setting["BACKEND"])(
        **storage_setting.get("OPTIONS", {})
    )
    with psycopg.connect(fresh_database) as db:
        images = db.execute("SELECT file, sha256 FROM diagnosis_dermoscopicimage").fetchall()
    assert len(images) == len(SAMPLES)
    for name, sha256 in images:
        with restored_storage.open(name, "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == sha256, name

    # A second restore into the now populated target is refused, and says why.
    again = _run("restore", backup, {**base_env, **target_env, "DATABASE_URL": fresh_database})
    assert again.returncode != 0
    assert "restore into a new, empty database" in again.stderr
