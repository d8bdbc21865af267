"""manage.py reencrypt_files: every stored file under the newest IMAGE_ENCRYPTION_KEY.

Key rotation (docs/deploy.md): put the new key first in IMAGE_ENCRYPTION_KEY, the old one
after it, restart web and workers (both keys now decrypt, the new one encrypts), run this, then
drop the old key. Files stored before encryption was switched on are encrypted too. Safe to
run twice or to interrupt: each file is replaced whole by its re-encrypted copy.
"""

from __future__ import annotations

import os
import tempfile

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError

from melanoma_portal.backup import raw_storage, stored_names
from melanoma_portal.storage import FERNET_PREFIX, fernet_from_setting


class Command(BaseCommand):
    help = "Re-encrypt every stored file with the first key of IMAGE_ENCRYPTION_KEY."

    def handle(self, *args, **options) -> None:
        if not settings.IMAGE_ENCRYPTION_KEY:
            raise CommandError("IMAGE_ENCRYPTION_KEY is not set: there is no key to encrypt with.")
        fernet = fernet_from_setting(settings.IMAGE_ENCRYPTION_KEY)
        storage = raw_storage()
        count = 0
        for name in stored_names(storage):
            with storage.open(name, "rb") as handle:
                data = handle.read()
            token = fernet.rotate(data) if data.startswith(FERNET_PREFIX) else fernet.encrypt(data)
            if token == data:
                continue
            if hasattr(storage, "bucket"):  # S3: a PUT replaces the object whole
                storage._save(name, ContentFile(token))
            else:  # a disk: write beside it, then rename over it (atomic)
                path = storage.path(name)
                handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path))
                with os.fdopen(handle, "wb") as out:
                    out.write(token)
                os.replace(temporary, path)
            count += 1
        self.stdout.write(f"Re-encrypted {count} files with the newest key.")
