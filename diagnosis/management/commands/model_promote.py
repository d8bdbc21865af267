"""Serve a registered version, if the promotion gate passes; or roll back to the previous one.

    manage.py model_promote VERSION --by admin@example.org --reason "..."
    manage.py model_promote --rollback --by admin@example.org --reason "..."

Running workers serve the new version from their next task; no restart.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from diagnosis.management.commands._model_registry import (
    actor,
    add_actor_argument,
    model_version,
    refusal,
)
from diagnosis.services import model_version_promote, model_version_rollback


class Command(BaseCommand):
    help = "Promote a registered model version to active through the gate, or roll back."

    def add_arguments(self, parser) -> None:
        parser.add_argument("version", nargs="?")
        parser.add_argument("--rollback", action="store_true")
        add_actor_argument(parser)
        parser.add_argument("--reason", required=True, help="why (kept with the change)")

    def handle(self, *args, version, rollback: bool, by: str, reason: str, **options) -> None:
        if bool(version) == rollback:
            raise CommandError("Name a version to promote, or --rollback (not both).")
        user = actor(by)
        try:
            if rollback:
                served = model_version_rollback(actor=user, reason=reason)
            else:
                served = model_version_promote(
                    actor=user, model_version=model_version(version), reason=reason
                )
        except (ValidationError, PermissionDenied) as error:
            raise refusal(error) from None
        self.stdout.write(f"{served.version} is active; workers serve it from their next task.")
