"""Bulk re-analysis with the served version, run here, in batches, with a progress bar.

    manage.py reanalyse --model ham10000-lite0-v2 --by admin@example.org --reason "v2 promoted"
    manage.py reanalyse --model ham10000-lite0-v2 --lesions 12 15 --by ... --reason "..."
    manage.py reanalyse --model ham10000-lite0-v2 --clinic "North Clinic" --batch-size 32 ...

Each chosen image gets a new analysis beside its earlier results (as model_reanalyse does; the
patient's page lists both), audited with the reason; images already analysed by the version,
or waiting for it, are left alone. The new analyses run in this process through the worker's
own batch path (one call into the network per batch), not one task each; with no --lesions and
no --clinic, every image the portal keeps is chosen. `model_reanalyse` still queues chosen
analyses for the workers instead.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from accounts.models import Clinic
from diagnosis.management.commands._model_registry import actor, add_actor_argument, refusal
from diagnosis.models import Analysis
from diagnosis.services.reanalysis import analyses_reanalyse, reanalysis_run, reanalysis_version


class Command(BaseCommand):
    help = "Analyse chosen images again with the served version, in batches, in this process."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", required=True, metavar="VERSION", help="the served version")
        parser.add_argument("--lesions", type=int, nargs="+", default=[], metavar="ID")
        parser.add_argument(
            "--clinic", nargs="+", default=[], metavar="ID_OR_NAME", help="every lesion of these"
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=settings.ANALYSIS_BATCH_SIZE,
            metavar="N",
            help=f"images per pass through the network (default {settings.ANALYSIS_BATCH_SIZE})",
        )
        add_actor_argument(parser)
        parser.add_argument("--reason", required=True, help="why (kept on the audit trail)")

    def handle(self, *args, model: str, lesions, clinic, batch_size: int, by: str, reason: str,
               **options) -> None:  # fmt: skip
        if batch_size < 1:
            raise CommandError(f"--batch-size must be 1 or more, not {batch_size}.")
        superuser = actor(by)
        try:
            reanalysis_version(model)
        except ValidationError as error:
            raise refusal(error) from None
        sources = self._sources(lesions, clinic)
        try:
            created, skipped = analyses_reanalyse(
                actor=superuser, analysis_ids=sources, reason=reason, enqueue=False
            )
        except (ValidationError, PermissionDenied) as error:
            raise refusal(error) from None
        self.stdout.write(f"{len(created)} images to analyse with {model}.")
        from tqdm import tqdm

        with tqdm(
            total=len(created), unit="image", file=self.stderr, disable=options["verbosity"] < 1
        ) as bar:
            summary = reanalysis_run(
                analysis_ids=[a.pk for a in created], batch_size=batch_size, on_batch=bar.update
            )
        self.stdout.write(
            f"Done: {summary.done}. Refused by the image gate: {summary.refused}. "
            f"Failed: {summary.failed}. Skipped: {sum(skipped.values()) + summary.taken_by_worker}."
        )
        for why, count in skipped.items():
            self.stdout.write(f"Skipped {count}: {why}.")
        if summary.taken_by_worker:
            self.stdout.write(f"Skipped {summary.taken_by_worker}: a worker took them first.")
        if summary.model_versions - {model}:
            self.stdout.write(
                f"Made by {', '.join(sorted(summary.model_versions))}: the served version "
                "changed during the run."
            )

    def _sources(self, lesions: list[int], clinics: list[str]) -> list[int]:
        """An analysis of each chosen image, its latest first (the one the new result is put
        beside); CommandError when the choice matches nothing."""
        chosen = Q()
        if lesions:
            missing = set(lesions) - set(
                Analysis.objects.filter(image__lesion__in=lesions).values_list(
                    "image__lesion", flat=True
                )
            )
            if missing:
                raise CommandError(
                    f"No analysed images on lesion(s) {', '.join(map(str, sorted(missing)))}: "
                    "check the ids (the lesion page's address ends with its id)."
                )
            chosen |= Q(image__lesion__in=lesions)
        for name in clinics:
            found = Clinic.objects.filter(
                Q(pk=int(name)) if name.isdigit() else Q(name__iexact=name)
            ).first()
            if found is None:
                raise CommandError(f"No clinic with the id or name {name!r}.")
            chosen |= Q(image__lesion__patient__clinic=found)
        ids = list(
            Analysis.objects.filter(chosen)
            .order_by("image_id", "-queued_at", "-id")
            .values_list("pk", flat=True)
        )
        if not ids:
            raise CommandError("No analysed images match: nothing to re-analyse.")
        return ids
