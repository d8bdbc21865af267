"""manage.py reencrypt_files: after it, the old key can go and every file still reads."""

from __future__ import annotations

import io

from cryptography.fernet import Fernet
from django.core.files.storage import default_storage
from django.core.management import call_command

from melanoma_portal.settings.base import default_storage_from_env


def _use_key(settings, key: str) -> None:
    settings.IMAGE_ENCRYPTION_KEY = key
    settings.STORAGES = {
        **settings.STORAGES,
        "default": default_storage_from_env({"IMAGE_ENCRYPTION_KEY": key}),
    }


def test_reencrypted_files_read_with_the_new_key_alone(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    _use_key(settings, old)
    name = default_storage.save("images/a.jpg", io.BytesIO(b"dermoscopic image"))
    plain = settings.MEDIA_ROOT / "images" / "clear.jpg"  # stored before encryption was on
    plain.write_bytes(b"older image")

    _use_key(settings, f"{new},{old}")
    call_command("reencrypt_files", stdout=io.StringIO())
    _use_key(settings, new)

    with default_storage.open(name) as handle:
        assert handle.read() == b"dermoscopic image"
    assert plain.read_bytes().startswith(b"gAAAAA")
    with default_storage.open("images/clear.jpg") as handle:
        assert handle.read() == b"older image"
