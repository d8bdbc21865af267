"""Encryption at rest for the files the portal keeps (patient images, thumbnails, heatmaps).

Set IMAGE_ENCRYPTION_KEY (one or more Fernet keys, comma separated, newest first) and every
file is encrypted before it leaves the process and decrypted when read through the storage API
(`field.open()`), which is how the permission-checked image view and the worker read it: on
the portal's own disk (EncryptedFileSystemStorage) and in an S3 bucket alike
(melanoma_portal.storage_s3). A copied disk, bucket or backup without the key shows only
ciphertext. Files written before a key was configured are still readable (they lack the Fernet
prefix), so turning encryption on needs no migration. Older keys listed after the first keep
decrypting until files are re-encrypted: key rotation without downtime.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

# Every Fernet token starts with version byte 0x80, base64url-encoded: "gAAAAA".
FERNET_PREFIX = b"gAAAAA"


def fernet_from_setting(value: str) -> MultiFernet:
    keys = [key.strip() for key in value.split(",") if key.strip()]
    if not keys:
        raise ImproperlyConfigured("IMAGE_ENCRYPTION_KEY is set but empty.")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "IMAGE_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64-encoded bytes); "
            "make one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'"
        ) from exc


class EncryptedStorageMixin:
    """Fernet-encrypts every file before the storage below writes it (AES-128-CBC + HMAC) and
    decrypts it when read; put it before any Django storage class."""

    def __init__(self, *args, key: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._key_setting = key

    @property
    def fernet(self) -> MultiFernet:
        value = self._key_setting or getattr(settings, "IMAGE_ENCRYPTION_KEY", "")
        return fernet_from_setting(value)

    def _save(self, name: str, content) -> str:
        if hasattr(content, "seek"):
            content.seek(0)
        token = self.fernet.encrypt(content.read())
        return super()._save(name, ContentFile(token))

    def _open(self, name: str, mode: str = "rb"):
        if "w" in mode or "a" in mode:
            raise ValueError("Encrypted files are written through save(), not opened for writing.")
        with super()._open(name, "rb") as handle:
            data = handle.read()
        if data.startswith(FERNET_PREFIX):
            try:
                data = self.fernet.decrypt(data)
            except InvalidToken as exc:
                raise OSError(f"{name} could not be decrypted with the configured key.") from exc
        # else: written before encryption was switched on; served as it is.
        file = ContentFile(data, name=name)
        file.mode = mode
        return file


class EncryptedFileSystemStorage(EncryptedStorageMixin, FileSystemStorage):
    """A FileSystemStorage whose files are Fernet-encrypted on disk."""
