"""Give images stored before lesion-centric care their perceptual hash (duplicate warnings) and
their embedding (similar cases). Safe to run again; only what is missing is computed."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from diagnosis.services.backfill import analyses_embed_missing, images_fingerprint_missing


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser) -> None:
        parser.add_argument("--limit", type=int, default=None, help="at most this many of each")
        parser.add_argument("--no-embeddings", action="store_true", help="hashes only (no model)")

    def handle(self, *args, limit: int | None, no_embeddings: bool, **options) -> None:
        hashed = images_fingerprint_missing(limit=limit)
        self.stdout.write(f"perceptual hashes computed: {hashed}")
        if not no_embeddings:
            embedded = analyses_embed_missing(limit=limit)
            self.stdout.write(f"embeddings stored: {embedded}")
