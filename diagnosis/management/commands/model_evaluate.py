"""Measure a registered version on the clinic's confirmed cases beside the active version.

    manage.py model_evaluate VERSION --by admin@example.org [--clinic ID] [--resamples 1000]

The report (balanced accuracy, melanoma AUC, melanoma sensitivity at the triage boundary and the
benign lesions left routine there, with counts and bootstrap 95% intervals, for both versions on
the same images) is stored with the version, where the promotion gate and the admin's page read
it, and printed.
"""

from __future__ import annotations

import json

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand

from diagnosis.management.commands._model_registry import (
    actor,
    add_actor_argument,
    model_version,
    refusal,
)
from diagnosis.services import model_version_evaluate


def _figure(report: dict | None, name: str) -> str:
    if not report or report.get(name, {}).get("value") is None:
        return "-"
    figure = report[name]
    text = f"{100 * figure['value']:.1f}%"
    if figure.get("ci95"):
        low, high = figure["ci95"]
        text += f" ({100 * low:.1f}-{100 * high:.1f})"
    if figure.get("count"):
        text += f" [{figure['count'][0]}/{figure['count'][1]}]"
    return text


class Command(BaseCommand):
    help = "Evaluate a registered model version on the clinic's confirmed cases."

    def add_arguments(self, parser) -> None:
        parser.add_argument("version")
        add_actor_argument(parser)
        parser.add_argument("--clinic", type=int, help="one clinic's cases (default: all)")
        parser.add_argument("--resamples", type=int, help="bootstrap resamples (default 1000)")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print the whole report as JSON"
        )

    def handle(self, *args, version: str, by: str, clinic, resamples, as_json: bool, **options):
        try:
            evaluation = model_version_evaluate(
                actor=actor(by),
                model_version=model_version(version),
                clinic_id=clinic,
                resamples=resamples,
            )
        except (ValidationError, PermissionDenied) as error:
            raise refusal(error) from None
        report = evaluation.report
        if as_json:
            self.stdout.write(json.dumps(report, indent=2))
            return
        cases = report["cases"]
        self.stdout.write(
            f"{cases['n_images']} images of {cases['n_lesions']} lesions, "
            f"{cases['n_melanoma']} melanomas; labels: {cases['by_source']}; "
            f"left out: {cases['skipped'] or 'none'}"
        )
        rows = [("", "balanced accuracy", "melanoma AUC", "mel sensitivity", "benign specificity")]
        for key in ("candidate", "active"):
            part = report.get(key)
            if part:
                rows.append(
                    (
                        part["version"],
                        _figure(part, "balanced_accuracy"),
                        _figure(part, "melanoma_auc"),
                        _figure(part, "melanoma_sensitivity"),
                        _figure(part, "benign_specificity"),
                    )
                )
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for row in rows:
            cells = zip(row, widths, strict=True)
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in cells))
        self.stdout.write(
            "At the triage boundary: melanomas flagged, benign lesions left routine; 95% bootstrap "
            f"intervals over lesions. Stored as evaluation {evaluation.pk} of {version}."
        )
