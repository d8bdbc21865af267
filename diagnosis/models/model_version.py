"""The model registry: every classifier version the portal knows, what became of it, how it
measured on the clinic's own cases, and what it said, in shadow, about new uploads.

A version is a `candidate` when registered, may run in `shadow` beside the served one (its
results stored, never shown), becomes `active` (served) only through the promotion gate, and is
`retired` when another takes its place. At most one version is active and at most one in shadow
(the database refuses more). Nothing here is ever deleted: every status change is a row of
ModelStatusChange, and every local evaluation a row of ModelEvaluation.

An analysis stays pinned to the version that made it by name (`Analysis.model_version`), as it
was before the registry existed.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from diagnosis.models.analysis import Analysis, RiskTier, TriageLevel


class ModelStatus(models.TextChoices):
    CANDIDATE = "candidate", "Candidate"
    SHADOW = "shadow", "Shadow"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class ModelVersion(models.Model):
    version = models.CharField(max_length=100, unique=True)
    architecture = models.CharField(max_length=100)
    # The card's network ("lesionnet", "ensemble"; empty for a plain timm network, v1).
    network = models.CharField(max_length=30, blank=True)
    runtime = models.CharField(max_length=20, default="torch")
    # sha256 of every file of the model directory when it was registered.
    checksums = models.JSONField(default=dict)
    card = models.JSONField()
    # The card's shipped validation figures in ml.local_validation's shape (None: the card
    # has none), the promotion gate's fallback while the local cases are too few.
    validation = models.JSONField(null=True, blank=True)
    # What the image gate shipped beside it measured (gate.json "measured", without the
    # per-image detail), for the drift watch on hosts without the model files; None: no gate.
    gate_measured = models.JSONField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=ModelStatus.choices, default=ModelStatus.CANDIDATE
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    status_changed_by_name = models.CharField(max_length=200, blank=True)
    status_reason = models.TextField(blank=True)
    registered_at = models.DateTimeField(auto_now_add=True)
    # "" when registered from the models folder as a worker started (the shipped versions).
    registered_by_name = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-registered_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status="active"),
                name="model_version_one_active",
            ),
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status="shadow"),
                name="model_version_one_shadow",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["candidate", "shadow", "active", "retired"]),
                name="model_version_status_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.version} ({self.status})"


class ModelStatusChange(models.Model):
    """One change of a version's status: who, when, why, and the gate's verdict for a
    promotion. Kept for good (PROTECT), beside the audit trail's event."""

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="status_changes"
    )
    from_status = models.CharField(max_length=10, choices=ModelStatus.choices, blank=True)
    to_status = models.CharField(max_length=10, choices=ModelStatus.choices)
    at = models.DateTimeField(auto_now_add=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    by_name = models.CharField(max_length=200, blank=True)
    reason = models.TextField()
    gate = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.model_version.version}: {self.from_status or 'new'} -> {self.to_status}"


class ModelEvaluation(models.Model):
    """A version measured on the local validation set (manage.py model_evaluate, or the
    admin's button), beside the version active at the time on the same cases."""

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="evaluations"
    )
    # The version active when this was measured ("" if none was), measured on the same cases.
    compared_with = models.CharField(max_length=100, blank=True)
    n_cases = models.PositiveIntegerField()
    n_melanomas = models.PositiveIntegerField()
    report = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_by_name = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Evaluation of {self.model_version.version} ({self.n_cases} cases)"


class ShadowStatus(models.TextChoices):
    DONE = "done", "Done"
    NOT_ANALYSED = "not_analysed", "Not analysed"  # its own image gate refused the image
    FAILED = "failed", "Failed"


class ShadowResult(models.Model):
    """What a shadow version said about an analysis's image. Read only by the comparison
    (clinic admins, the Django admin); never by a page, the PDF, the API or FHIR."""

    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="shadow_results"
    )
    status = models.CharField(max_length=20, choices=ShadowStatus.choices)
    probabilities = models.JSONField(null=True, blank=True)
    top_class = models.CharField(max_length=10, blank=True)
    melanoma_probability = models.FloatField(null=True, blank=True)
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, blank=True)
    triage_level = models.CharField(max_length=10, choices=TriageLevel.choices, blank=True)
    gate_reason = models.CharField(max_length=30, blank=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    timings_ms = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["analysis", "model_version"], name="shadow_result_once_per_version"
            ),
        ]

    def __str__(self) -> str:
        return f"Shadow {self.model_version_id} of analysis {self.analysis_id} ({self.status})"


class DriftReport(models.Model):
    """One clinic's week of results from one served version, against that version's
    validation figures (ml.drift): the weekly drift watch, shown on the admin's dashboard."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.CASCADE, related_name="+")
    model_version = models.CharField(max_length=100)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    n_analyses = models.PositiveIntegerField()
    observed = models.JSONField()
    expected = models.JSONField()
    # The shifts found, in words ([] when none, or when the week had too few analyses).
    shifts = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period_end", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "model_version", "period_end"], name="drift_report_once"
            ),
        ]

    def __str__(self) -> str:
        return f"Drift of {self.model_version} at clinic {self.clinic_id} to {self.period_end}"

    @property
    def flagged(self) -> bool:
        return bool(self.shifts)

    @property
    def too_few(self) -> bool:
        from ml.drift import MIN_ANALYSES

        return self.n_analyses < MIN_ANALYSES
