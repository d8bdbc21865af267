"""manage.py restore DIR: a backup into an empty database and storage (melanoma_portal.backup)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from melanoma_portal.backup import BackupError, restore


class Command(BaseCommand):
    help = "Restore a backup into the configured, empty database and storage."

    def add_arguments(self, parser) -> None:
        parser.add_argument("source", type=Path, help="a folder written by manage.py backup")

    def handle(self, *args, source: Path, **options) -> None:
        try:
            manifest = restore(source)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Restored the database and {len(manifest['files'])} files (each checked against "
            f"its sha256) from {source} ({manifest['created_at']})."
        )
