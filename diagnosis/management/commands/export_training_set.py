"""Export consenting patients' confirmed cases in HAM10000's layout, for python -m ml.train.

    manage.py export_training_set --since 2026-01-01 --out exports/2026-q1 --by admin@example.org

Only patients whose consent to research use is recorded; no names, MRNs or dates of birth
(see diagnosis.services.training_export).
"""

from __future__ import annotations

import datetime
from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand

from diagnosis.management.commands._model_registry import actor, add_actor_argument, refusal
from diagnosis.services.training_export import training_set_export


class Command(BaseCommand):
    help = "Export consenting patients' confirmed cases in HAM10000's layout."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", type=datetime.date.fromisoformat, required=True)
        parser.add_argument("--out", type=Path, required=True, help="a new or empty folder")
        add_actor_argument(parser)

    def handle(self, *args, since: datetime.date, out: Path, by: str, **options) -> None:
        try:
            summary = training_set_export(actor=actor(by), since=since, out_dir=out)
        except (ValidationError, PermissionDenied) as error:
            raise refusal(error) from None
        self.stdout.write(
            f"Wrote {summary['images']} images of {summary['lesions']} lesions "
            f"({summary['patients']} patients) to {out}; left out: {summary['left_out']}."
        )
