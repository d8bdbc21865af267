"""Put a registered version into shadow, take it out, or retire it.

manage.py model_status VERSION shadow|candidate|retired --by admin@example.org --reason "..."
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand

from diagnosis.management.commands._model_registry import (
    actor,
    add_actor_argument,
    model_version,
    refusal,
)
from diagnosis.models import ModelStatus
from diagnosis.services import model_version_set_status


class Command(BaseCommand):
    help = "Set a registered model version's status: shadow, candidate or retired."

    def add_arguments(self, parser) -> None:
        parser.add_argument("version")
        parser.add_argument(
            "status", choices=[ModelStatus.SHADOW, ModelStatus.CANDIDATE, ModelStatus.RETIRED]
        )
        add_actor_argument(parser)
        parser.add_argument("--reason", required=True, help="why (kept with the change)")

    def handle(self, *args, version: str, status: str, by: str, reason: str, **options) -> None:
        try:
            changed = model_version_set_status(
                actor=actor(by), model_version=model_version(version), status=status, reason=reason
            )
        except (ValidationError, PermissionDenied) as error:
            raise refusal(error) from None
        self.stdout.write(f"{changed.version} is {changed.get_status_display().lower()}.")
