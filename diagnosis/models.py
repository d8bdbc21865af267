"""Lesions, their dermoscopic images, and the AI analyses of those images."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class AnatomicSite(models.TextChoices):
    # The HAM10000 / ISIC localisation vocabulary, so results compare with the training data.
    ABDOMEN = "abdomen", "Abdomen"
    ACRAL = "acral", "Acral"
    BACK = "back", "Back"
    CHEST = "chest", "Chest"
    EAR = "ear", "Ear"
    FACE = "face", "Face"
    FOOT = "foot", "Foot"
    GENITAL = "genital", "Genital"
    HAND = "hand", "Hand"
    LOWER_EXTREMITY = "lower extremity", "Lower extremity"
    NECK = "neck", "Neck"
    SCALP = "scalp", "Scalp"
    TRUNK = "trunk", "Trunk"
    UPPER_EXTREMITY = "upper extremity", "Upper extremity"
    UNKNOWN = "unknown", "Unknown"


class Lesion(models.Model):
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="lesions"
    )
    anatomic_site = models.CharField(max_length=20, choices=AnatomicSite.choices)
    label = models.CharField(max_length=100, blank=True, help_text="e.g. 'left shoulder, 2 cm'")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        site = self.get_anatomic_site_display()
        return f"{site} - {self.label}" if self.label else site

    @property
    def audit_patient_id(self) -> int:
        """The patient an audit event about this record names (accounts.audit)."""
        return self.patient_id


def image_upload_path(instance: DermoscopicImage, filename: str) -> str:
    # Random names: a storage listing must not reveal patients or clinics' case counts by name.
    return f"images/{uuid.uuid4().hex}.{filename.rsplit('.', 1)[-1].lower()}"


def heatmap_upload_path(instance: Analysis, filename: str) -> str:
    return f"heatmaps/{uuid.uuid4().hex}.png"


class DermoscopicImage(models.Model):
    lesion = models.ForeignKey(Lesion, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(upload_to=image_upload_path, max_length=255, blank=True)
    thumbnail = models.FileField(upload_to=image_upload_path, max_length=255, blank=True)
    content_type = models.CharField(max_length=20)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    original_filename = models.CharField(max_length=255, blank=True)
    # One upload form, one image: a second POST with the same token is the same upload.
    submission_token = models.UUIDField(null=True, blank=True, unique=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
    original_deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-uploaded_at", "-id"]

    def __str__(self) -> str:
        return f"Image {self.pk} of lesion {self.lesion_id}"

    @property
    def audit_patient_id(self) -> int:
        return self.lesion.patient_id


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
        """The records this analysis's audit history is made of: its image and every version
        of its review (accounts.audit_selectors.history_for)."""
        reviews = self.reviews.values_list("pk", flat=True)
        return [("dermoscopicimage", self.image_id), *(("review", pk) for pk in reviews)]

    @property
    def is_pending(self) -> bool:
        return self.status in (AnalysisStatus.QUEUED, AnalysisStatus.RUNNING)

    @property
    def model_inputs_display(self) -> str:
        """What the model looked at, in words: 'image, age, sex, site' or 'image only'."""
        used = [field for field in ("age", "sex", "site") if field in (self.metadata_used or [])]
        return "image, " + ", ".join(used) if used else "image only"


# --- Doctors' reviews of analyses, and the histology that later confirms or refutes them. ---


class DiagnosisChoice(models.TextChoices):
    """A clinical or histological diagnosis: the classifier's seven classes, or something else
    (written out in the accompanying free-text field)."""

    AKIEC = "akiec", "Actinic keratosis / Bowen's disease"
    BCC = "bcc", "Basal cell carcinoma"
    BKL = "bkl", "Benign keratosis"
    DF = "df", "Dermatofibroma"
    MEL = "mel", "Melanoma"
    NV = "nv", "Melanocytic nevus"
    VASC = "vasc", "Vascular lesion"
    OTHER = "other", "Other"


class Management(models.TextChoices):
    REASSURE = "reassure", "Reassure"
    MONITOR = "monitor", "Monitor (follow-up visit)"
    EXCISE = "excise", "Excise"
    REFER_URGENTLY = "refer_urgently", "Refer urgently"


class Review(models.Model):
    """One version of a doctor's review of an analysis.

    A review is a draft until signed; once signed it is locked (the service refuses, and on
    PostgreSQL a trigger refuses any UPDATE of a signed row). A change of mind after signing is
    an amendment: a new version that `supersedes` the old one, which stays as it was.
    """

    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="reviews")
    version = models.PositiveSmallIntegerField(default=1)
    # CASCADE only ever runs when the whole analysis goes (a patient's erasure); nothing
    # deletes a single version.
    supersedes = models.OneToOneField(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="superseded_by",
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    agrees_with_ai = models.BooleanField("Agrees with the AI")
    diagnosis = models.CharField(
        "Clinical diagnosis", max_length=10, choices=DiagnosisChoice.choices
    )
    diagnosis_other = models.CharField("Other diagnosis", max_length=200, blank=True)
    management = models.CharField(max_length=20, choices=Management.choices)
    follow_up_on = models.DateField("Follow-up date", null=True, blank=True)
    notes = models.TextField(blank=True)
    amendment_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Copied at signing, so the signature outlives a renamed or removed account.
    signed_by_name = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["analysis_id", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["analysis", "version"], name="review_unique_version_per_analysis"
            ),
            # At most one unsigned draft per analysis: two doctors cannot draft side by side.
            models.UniqueConstraint(
                fields=["analysis"],
                condition=models.Q(signed_at__isnull=True),
                name="review_one_draft_per_analysis",
            ),
            models.CheckConstraint(
                condition=~models.Q(management="monitor") | models.Q(follow_up_on__isnull=False),
                name="review_monitor_has_follow_up_date",
            ),
            models.CheckConstraint(
                condition=~models.Q(diagnosis="other") | ~models.Q(diagnosis_other=""),
                name="review_other_diagnosis_is_named",
            ),
            models.CheckConstraint(
                condition=models.Q(signed_at__isnull=True) | ~models.Q(signed_by_name=""),
                name="review_signature_has_name",
            ),
            models.CheckConstraint(
                condition=(models.Q(version=1) & models.Q(supersedes__isnull=True))
                | (models.Q(version__gt=1) & models.Q(supersedes__isnull=False)),
                name="review_amendment_links_previous_version",
            ),
        ]

    def __str__(self) -> str:
        state = "signed" if self.is_signed else "draft"
        return f"Review v{self.version} of analysis {self.analysis_id} ({state})"

    @property
    def is_signed(self) -> bool:
        return self.signed_at is not None

    @property
    def audit_patient_id(self) -> int:
        return self.analysis.image.lesion.patient_id

    @property
    def diagnosis_label(self) -> str:
        if self.diagnosis == DiagnosisChoice.OTHER:
            return f"Other: {self.diagnosis_other}"
        return self.get_diagnosis_display()


class Histopathology(models.Model):
    """The histology result of a lesion: the reference the AI and the doctors are judged by."""

    lesion = models.OneToOneField(Lesion, on_delete=models.CASCADE, related_name="histopathology")
    diagnosis = models.CharField(
        "Histological diagnosis", max_length=10, choices=DiagnosisChoice.choices
    )
    diagnosis_other = models.CharField("Other diagnosis", max_length=200, blank=True)
    reported_on = models.DateField("Date of the histology report")
    lab_reference = models.CharField("Laboratory reference", max_length=100)
    notes = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "histopathology results"
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(diagnosis="other") | ~models.Q(diagnosis_other=""),
                name="histopathology_other_diagnosis_is_named",
            ),
        ]

    def __str__(self) -> str:
        return f"Histopathology of lesion {self.lesion_id}: {self.diagnosis}"

    @property
    def audit_patient_id(self) -> int:
        return self.lesion.patient_id

    @property
    def diagnosis_label(self) -> str:
        if self.diagnosis == DiagnosisChoice.OTHER:
            return f"Other: {self.diagnosis_other}"
        return self.get_diagnosis_display()
