"""Analyse past cases again with the active version (after a promotion); earlier results stay.

    manage.py model_reanalyse --analyses 12 15 40 --by admin@example.org --reason "..."
    manage.py model_reanalyse --made-by ham10000-lite0-v1 --by ... --reason "..."

`--made-by` chooses every finished analysis that version made. Each new analysis is queued for
the worker, which makes it with the version active then.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from diagnosis.management.commands._model_registry import actor, add_actor_argument, refusal
from diagnosis.models import Analysis, AnalysisStatus
from diagnosis.services.reanalysis import analyses_reanalyse


class Command(BaseCommand):
    help = "Queue new analyses of chosen past cases, made by the active model version."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--analyses", type=int, nargs="+", default=[], metavar="ID")
        parser.add_argument("--made-by", metavar="VERSION", help="every result of this version")
        add_actor_argument(parser)
        parser.add_argument("--reason", required=True, help="why (kept on the audit trail)")

    def handle(self, *args, analyses, made_by, by: str, reason: str, **options) -> None:
        ids = list(analyses)
        if made_by:
            ids += list(
                Analysis.objects.filter(
                    model_version=made_by, status=AnalysisStatus.DONE
                ).values_list("pk", flat=True)
            )
        if not ids:
            raise CommandError("Choose the cases: --analyses ID ... or --made-by VERSION.")
        try:
            created, skipped = analyses_reanalyse(actor=actor(by), analysis_ids=ids, reason=reason)
        except (ValidationError, PermissionDenied) as error:
            raise refusal(error) from None
        self.stdout.write(f"{len(created)} new analyses queued.")
        for why, count in skipped.items():
            self.stdout.write(f"Left alone: {count} ({why}).")
