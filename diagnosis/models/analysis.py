"""The AI analysis of a dermoscopic image: its state in the queue and its result."""

from __future__ import annotations

import uuid

from django.db import models

from diagnosis.models.lesion import DermoscopicImage


def heatmap_upload_path(instance: Analysis, filename: str) -> str:
    return f"heatmaps/{uuid.uuid4().hex}.png"


class AnalysisStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class RiskTier(models.TextChoices):
    LOW = "low", "Low"
    MODERATE = "moderate", "Moderate"
    HIGH = "high", "High"


class Analysis(models.Model):
    image = models.ForeignKey(DermoscopicImage, on_delete=models.CASCADE, related_name="analyses")
    status = models.CharField(
        max_length=10, choices=AnalysisStatus.choices, default=AnalysisStatus.QUEUED, db_index=True
    )
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    failure_reason = models.TextField(blank=True)

    probabilities = models.JSONField(null=True, blank=True)
    top_class = models.CharField(max_length=10, blank=True)
    melanoma_probability = models.FloatField(null=True, blank=True)
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    timings_ms = models.JSONField(null=True, blank=True)
    # Which of the lesion's age / sex / site the model read besides the image (empty: image
    # only, because the model does not use them or none was recorded).
    metadata_used = models.JSONField(default=list, blank=True)
    heatmap_top = models.FileField(upload_to=heatmap_upload_path, blank=True)
    heatmap_melanoma = models.FileField(upload_to=heatmap_upload_path, blank=True)

    class Meta:
        ordering = ["-queued_at", "-id"]
        verbose_name_plural = "analyses"
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="done")
                | (models.Q(probabilities__isnull=False) & ~models.Q(model_version="")),
                name="done_analysis_has_result",
            ),
        ]

    def __str__(self) -> str:
        return f"Analysis {self.pk} ({self.status})"

    @property
    def audit_patient_id(self) -> int:
        return self.image.lesion.patient_id

    def audit_parts(self) -> list[tuple[str, int]]:
        """The records this analysis's audit history is made of: its image, every version
        of its review and its referrals (accounts.selectors.audit.history_for)."""
        reviews = self.reviews.values_list("pk", flat=True)
        referrals = self.referrals.values_list("pk", flat=True)
        return [
            ("dermoscopicimage", self.image_id),
            *(("review", pk) for pk in reviews),
            *(("referral", pk) for pk in referrals),
        ]

    @property
    def is_pending(self) -> bool:
        return self.status in (AnalysisStatus.QUEUED, AnalysisStatus.RUNNING)

    @property
    def model_inputs_display(self) -> str:
        """What the model looked at, in words: 'image, age, sex, site' or 'image only'."""
        used = [field for field in ("age", "sex", "site") if field in (self.metadata_used or [])]
        return "image, " + ", ".join(used) if used else "image only"
