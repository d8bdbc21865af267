"""Backups that restore: the database and every stored file, and putting both back.

    manage.py backup DIR     # DIR/database.dump (or .sqlite3), DIR/files/, DIR/manifest.json
    manage.py restore DIR    # into an empty database and an empty bucket or media folder

deploy/backup and deploy/restore wrap these for cron and the runbook (docs/deploy.md).

The database: PostgreSQL through `pg_dump --format=custom` and `pg_restore` (the server's own
tools, so a backup is an ordinary dump an administrator can also restore by hand); SQLite
through its online backup API. The files: every object of the default storage, copied through
the storage API as stored, so the same code copies a bucket or a media folder. Files the portal
encrypted (IMAGE_ENCRYPTION_KEY) stay ciphertext in the backup: the key is not in it and must
be kept apart, or the images cannot be read again. manifest.json lists each file's sha256;
restore checks every file it wrote against it and refuses to write into a database or a storage
that already holds anything, so a mistyped target never mixes two portals.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils.module_loading import import_string

from melanoma_portal.storage import EncryptedStorageMixin

MANIFEST = "manifest.json"
FILES = "files"
FORMAT = "melanoma-portal-backup"
VERSION = 1


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why in plain words."""


def raw_storage() -> Storage:
    """The default storage's backend without the portal's encryption: bytes as stored."""
    config = settings.STORAGES["default"]
    cls = import_string(config["BACKEND"])
    if issubclass(cls, EncryptedStorageMixin):
        cls = next(
            c
            for c in cls.__mro__
            if issubclass(c, Storage) and not issubclass(c, EncryptedStorageMixin)
        )
    return cls(**config.get("OPTIONS", {}))


def stored_names(storage: Storage, folder: str = "") -> Iterator[str]:
    try:
        folders, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in sorted(files):
        yield f"{folder}/{name}" if folder else name
    for sub in sorted(folders):
        yield from stored_names(storage, f"{folder}/{sub}" if folder else sub)


def _read(storage: Storage, name: str) -> bytes:
    with storage.open(name, "rb") as handle:
        return handle.read()


def _database() -> dict[str, Any]:
    return connections[DEFAULT_DB_ALIAS].settings_dict


def _pg_env(db: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in (
        ("PGHOST", db.get("HOST")),
        ("PGPORT", db.get("PORT")),
        ("PGUSER", db.get("USER")),
        ("PGPASSWORD", db.get("PASSWORD")),
        ("PGDATABASE", db.get("NAME")),
    ):
        if value:
            env[key] = str(value)
    return env


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed: {result.stderr.strip() or result.stdout.strip()}")


def backup(target: Path) -> dict[str, Any]:
    """Write a backup into `target` (a new or empty folder). Returns the manifest."""
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty; back up into a new folder.")
    (target / FILES).mkdir(parents=True, exist_ok=True)
    db = _database()
    # The database first: a file uploaded during the copy is then an unreferenced extra, never
    # a row without its file.
    if db["ENGINE"].endswith("postgresql"):
        database_file = "database.dump"
        _run(
            ["pg_dump", "--format=custom", "--no-owner", f"--file={target / database_file}"],
            _pg_env(db),
        )
    elif db["ENGINE"].endswith("sqlite3"):
        database_file = "database.sqlite3"
        with sqlite3.connect(db["NAME"]) as source, sqlite3.connect(target / database_file) as out:
            source.backup(out)
    else:
        raise BackupError(f"no backup method for the database engine {db['ENGINE']}")
    storage = raw_storage()
    files = {}
    for name in stored_names(storage):
        content = _read(storage, name)
        path = target / FILES / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        files[name] = {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(),
        "database": {"engine": db["ENGINE"], "file": database_file},
        "storage": settings.STORAGES["default"]["BACKEND"],
        "encrypted_by_portal": issubclass(
            import_string(settings.STORAGES["default"]["BACKEND"]), EncryptedStorageMixin
        ),
        "files": files,
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def _manifest(source: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((Path(source) / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{source} holds no {MANIFEST}: not a portal backup.") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{source}/{MANIFEST} is not a melanoma-portal backup.")
    return manifest


def restore(source: Path) -> dict[str, Any]:
    """Put a backup back into the configured (empty) database and storage."""
    source = Path(source)
    manifest = _manifest(source)
    connection = connections[DEFAULT_DB_ALIAS]
    engine = connection.settings_dict["ENGINE"]
    if manifest["database"]["engine"] != engine:
        raise BackupError(
            f"the backup holds a {manifest['database']['engine']} database; the target is {engine}."
        )
    connection = connections[DEFAULT_DB_ALIAS]
    tables = connection.introspection.table_names()
    if tables:
        raise BackupError(
            f"the database {connection.settings_dict['NAME']} already has {len(tables)} "
            "tables; restore into a new, empty database."
        )
    storage = raw_storage()
    if next(stored_names(storage), None) is not None:
        raise BackupError("the storage already holds files; restore into an empty bucket/folder.")
    for name, expected in manifest["files"].items():
        content = (source / FILES / name).read_bytes()
        if hashlib.sha256(content).hexdigest() != expected["sha256"]:
            raise BackupError(f"{name} in the backup does not match its manifest checksum.")
        written = storage.save(name, ContentFile(content))
        if (
            written != name
            or hashlib.sha256(_read(storage, name)).hexdigest() != expected["sha256"]
        ):
            raise BackupError(f"{name} could not be written back unchanged.")
    db = connection.settings_dict
    database_file = source / manifest["database"]["file"]
    if db["ENGINE"].endswith("postgresql"):
        connection.close()
        _run(
            [
                "pg_restore",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                f"--dbname={db['NAME']}",
                str(database_file),
            ],
            _pg_env(db),
        )
    elif db["ENGINE"].endswith("sqlite3"):
        connection.close()
        shutil.copyfile(database_file, db["NAME"])
    else:
        raise ImproperlyConfigured(f"no restore method for the database engine {db['ENGINE']}")
    return manifest
