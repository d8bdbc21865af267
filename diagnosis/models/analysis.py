"""The AI analysis of a dermoscopic image: its state in the queue and its result.

An analysis ends in one of three ways: `done` (a prediction), `failed` (the worker could not
run it; Retry queues it again), or `not_analysed` (the image gate of the served model refused
the image as unusable or not dermoscopy: no prediction was made, so there is none to show).
A doctor may override the gate with a written reason; the analysis is then queued again,
predicted without the gate, and its result is marked as outside validated use.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from diagnosis.models.lesion import DermoscopicImage


def heatmap_upload_path(instance: Analysis, filename: str) -> str:
    return f"heatmaps/{uuid.uuid4().hex}.png"


class AnalysisStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    # The image gate refused the image; the reason is in gate_reason / gate_message.
    NOT_ANALYSED = "not_analysed", "Not analysed"


class RiskTier(models.TextChoices):
    LOW = "low", "Low"
    MODERATE = "moderate", "Moderate"
    HIGH = "high", "High"


class TriageLevel(models.TextChoices):
    """ml.triage's levels; what each means, in words, is in diagnosis.presentation."""

    ROUTINE = "routine", "Routine"
    SOON = "soon", "Soon"
    URGENT = "urgent", "Urgent"


class Analysis(models.Model):
    image = models.ForeignKey(DermoscopicImage, on_delete=models.CASCADE, related_name="analyses")
    # The clinic of the image's patient, copied when the analysis is made (a patient never
    # changes clinic). Every list of a clinic's analyses filters on it: through the image,
    # lesion and patient it is three joins away, where no index of this table can serve it,
    # and each dashboard tile then walked all of the clinic's analyses (bench/pages.py).
    clinic = models.ForeignKey(
        "accounts.Clinic",
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        db_index=False,  # the indexes below lead with it
    )
    status = models.CharField(
        max_length=20, choices=AnalysisStatus.choices, default=AnalysisStatus.QUEUED, db_index=True
    )
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # While running: the analysis whose task claimed this one and runs it in its batch
    # (diagnosis.services.batch). A delivery of this analysis's own task that finds it running
    # in another's batch leaves it alone; one that finds it claimed by itself knows that its
    # earlier delivery died mid-run. A plain id, not a key: it only names a task's claim.
    batch_lead = models.BigIntegerField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)

    probabilities = models.JSONField(null=True, blank=True)
    top_class = models.CharField(max_length=10, blank=True)
    melanoma_probability = models.FloatField(null=True, blank=True)
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, blank=True)
    # The clinical triage of every skin cancer (ml.triage), stored with the model version that
    # gave it; empty for results of a model without triage thresholds (v1), which keep their
    # melanoma risk tier.
    triage_level = models.CharField(max_length=10, choices=TriageLevel.choices, blank=True)
    triage_reason = models.CharField(max_length=100, blank=True)  # e.g. "BCC 96%"
    model_version = models.CharField(max_length=100, blank=True)
    timings_ms = models.JSONField(null=True, blank=True)
    # Which of the lesion's age / sex / site the model read besides the image (empty: image
    # only, because the model does not use them or none was recorded).
    metadata_used = models.JSONField(default=list, blank=True)
    heatmap_top = models.FileField(upload_to=heatmap_upload_path, blank=True)
    heatmap_melanoma = models.FileField(upload_to=heatmap_upload_path, blank=True)

    # The image gate's refusal (ml.gate.Verdict): its reason's key ("not_dermoscopic",
    # "blurred", ...), its words as the gate gave them, and what it measured. Kept after an
    # override, so an overridden result still says what the gate had found.
    gate_reason = models.CharField(max_length=30, blank=True)
    gate_message = models.TextField(blank=True)
    gate_measures = models.JSONField(null=True, blank=True)
    # A doctor's override of the gate: who, when and why (the name kept as it was then).
    overridden_at = models.DateTimeField(null=True, blank=True)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    overridden_by_name = models.CharField(max_length=200, blank=True)
    override_reason = models.TextField(blank=True)
    # Review by lesion: a doctor who signed the review of the lesion's latest image of a visit
    # may mark the visit's older images as covered by that review (diagnosis.services.review).
    # A covered analysis leaves the worklist; it has no review of its own.
    covered_by = models.ForeignKey(
        "diagnosis.Review",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="covered_analyses",
    )

    class Meta:
        ordering = ["-queued_at", "-id"]
        verbose_name_plural = "analyses"
        # What the query plans of the clinic's pages asked for at 100,000 analyses
        # (bench/pages.py --explain; diagnosis/migrations/0012_analysis_clinic.py says which).
        indexes = [
            models.Index(fields=["clinic", "-queued_at", "-id"], name="analysis_clinic_newest"),
            models.Index(fields=["clinic", "status", "queued_at"], name="analysis_clinic_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="done")
                | (models.Q(probabilities__isnull=False) & ~models.Q(model_version="")),
                name="done_analysis_has_result",
            ),
            # A refused image has a reason and no prediction of any kind.
            models.CheckConstraint(
                condition=~models.Q(status="not_analysed")
                | (
                    ~models.Q(gate_reason="")
                    & ~models.Q(model_version="")
                    & models.Q(probabilities__isnull=True)
                    & models.Q(melanoma_probability__isnull=True)
                    & models.Q(top_class="", risk_tier="", triage_level="")
                    & models.Q(heatmap_top="", heatmap_melanoma="")
                    & models.Q(overridden_at__isnull=True)
                ),
                name="not_analysed_has_reason_and_no_result",
            ),
            # Only a refused image can be overridden, and never without a written reason.
            models.CheckConstraint(
                condition=models.Q(overridden_at__isnull=True)
                | (~models.Q(override_reason="") & ~models.Q(gate_reason="")),
                name="override_has_reason",
            ),
            models.CheckConstraint(
                condition=models.Q(triage_level__in=["", *TriageLevel.values]),
                name="triage_level_known",
            ),
            models.CheckConstraint(
                condition=models.Q(covered_by__isnull=True) | models.Q(status="done"),
                name="only_a_result_is_covered",
            ),
        ]

    def __str__(self) -> str:
        return f"Analysis {self.pk} ({self.status})"

    def save(self, *args, **kwargs) -> None:
        # The services pass the clinic they already hold; anyone else gets it looked up.
        if self.clinic_id is None and self.image_id is not None:
            self.clinic_id = (
                DermoscopicImage.objects.filter(pk=self.image_id)
                .values_list("lesion__patient__clinic_id", flat=True)
                .get()
            )
        super().save(*args, **kwargs)

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
    def is_overridden(self) -> bool:
        """A doctor overrode the image gate: a result is outside validated use."""
        return self.overridden_at is not None

    @property
    def model_inputs_display(self) -> str:
        """What the model looked at, in words: 'image, age, sex, site' or 'image only'."""
        used = [field for field in ("age", "sex", "site") if field in (self.metadata_used or [])]
        return "image, " + ", ".join(used) if used else "image only"
