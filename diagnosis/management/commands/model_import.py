"""Register an exported model directory as a candidate version, after checking it against its
card (checksums, classes, preprocessing, that it loads).

    manage.py model_import DIR --by admin@example.org [--reason "..."]

The directory is copied into ML_MODELS_ROOT/<version> (the card names the version); a directory
that does not match its card is refused with the reason, and nothing is copied or registered.
"""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand

from diagnosis.management.commands._model_registry import actor, add_actor_argument, refusal
from diagnosis.services import model_version_import


class Command(BaseCommand):
    help = "Verify an exported model directory against its card and register it as a candidate."

    def add_arguments(self, parser) -> None:
        parser.add_argument("directory", type=Path)
        add_actor_argument(parser)
        parser.add_argument("--reason", default="", help="why it is imported (optional)")

    def handle(self, *args, directory: Path, by: str, reason: str, **options) -> None:
        try:
            version = model_version_import(actor=actor(by), path=directory, reason=reason)
        except (ValidationError, PermissionDenied) as error:
            raise refusal(error) from None
        self.stdout.write(
            f"Registered {version.version} as a candidate ({version.architecture}, "
            f"{version.runtime}); files in place and checked against the card."
        )
