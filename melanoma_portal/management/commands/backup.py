"""manage.py backup DIR: the database and every stored file (melanoma_portal.backup)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from melanoma_portal.backup import BackupError, backup


class Command(BaseCommand):
    help = "Back up the database and every stored file into a new folder."

    def add_arguments(self, parser) -> None:
        parser.add_argument("target", type=Path, help="a new or empty folder")

    def handle(self, *args, target: Path, **options) -> None:
        try:
            manifest = backup(target)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        size = sum(f["size"] for f in manifest["files"].values())
        self.stdout.write(
            f"Backed up the database and {len(manifest['files'])} files ({size / 1e6:.1f} MB) "
            f"into {target}."
        )
        if manifest["encrypted_by_portal"]:
            self.stdout.write(
                "The files are encrypted with IMAGE_ENCRYPTION_KEY, which is not in the backup: "
                "keep the key apart from it, or the images cannot be read again."
            )
