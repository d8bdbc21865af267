"""Backup and restore on the embedded default, now SQLite in WAL mode (issue 13, item 3): rows
another process has written but not yet checkpointed (still in the -wal file, not the database
file) are in the backup, and the restored database is in WAL mode too."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from tests.worker import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAKE_PATIENT = (
    "from tests import factories; "
    "factories.PatientFactory(clinic=factories.ClinicFactory(), mrn='WAL-1')"
)


def _env(folder) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "melanoma_portal.settings.test",
        "PORTAL_VAR_DIR": str(folder),
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "DATABASE_CONN_MAX_AGE": "0",
        "MEDIA_ROOT": str(folder / "media"),
        "CELERY_BROKER_URL": "filesystem://",
        "CACHE_URL": "",
        "IMAGE_ENCRYPTION_KEY": "",
    }


def _manage(folder, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=_env(folder),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_backup_and_restore_keep_what_is_still_in_the_wal(tmp_path):
    live, fresh, backup = tmp_path / "live", tmp_path / "fresh", tmp_path / "backup"
    live.mkdir(), fresh.mkdir()
    _manage(live, "migrate", "-v0")
    _manage(live, "shell", "-c", MAKE_PATIENT)
    # Another process (the web server) holds the database open, with a write not checkpointed.
    holder = sqlite3.connect(live / "db.sqlite3")
    holder.execute("PRAGMA wal_autocheckpoint=0")
    holder.execute("UPDATE patients_patient SET last_name = 'Only-in-the-WAL'")
    holder.commit()
    try:
        assert (live / "db.sqlite3-wal").stat().st_size > 0
        _manage(live, "backup", str(backup))
    finally:
        holder.close()

    _manage(fresh, "restore", str(backup))

    with sqlite3.connect(fresh / "db.sqlite3") as restored:
        rows = restored.execute("SELECT mrn, last_name FROM patients_patient").fetchall()
        mode = restored.execute("PRAGMA journal_mode").fetchone()[0]
    assert rows == [("WAL-1", "Only-in-the-WAL")]
    assert mode == "wal"
