"""Doctors' reviews of analyses, version by version, and the diagnoses they name."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from diagnosis.models.analysis import Analysis
from ml.classes import CLASS_NAMES


class DiagnosisChoice(models.TextChoices):
    """A clinical or histological diagnosis: the classifier's seven classes, or something else
    (written out in the accompanying free-text field). The classes' names are ml.classes's, so a
    doctor's diagnosis and the AI's suggestion read alike; the codes are stored in the database
    and tests/diagnosis/test_presentation.py checks they are the classifier's."""

    AKIEC = "akiec", CLASS_NAMES["akiec"]
    BCC = "bcc", CLASS_NAMES["bcc"]
    BKL = "bkl", CLASS_NAMES["bkl"]
    DF = "df", CLASS_NAMES["df"]
    MEL = "mel", CLASS_NAMES["mel"]
    NV = "nv", CLASS_NAMES["nv"]
    VASC = "vasc", CLASS_NAMES["vasc"]
    OTHER = "other", "Other"


class Management(models.TextChoices):
    REASSURE = "reassure", "Reassure"
    MONITOR = "monitor", "Monitor (follow-up visit)"
    EXCISE = "excise", "Excise"
    # The two referring decisions; each opens a referral (diagnosis.models.referral), due by
    # the clinic's policy for its urgency.
    REFER_SOON = "refer_soon", "Refer soon (not urgent)"
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
    # Where a referring decision sends the patient; copied to the referral when signed.
    referral_to = models.CharField("Refer to", max_length=200, blank=True)
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
        # Signed reviews are what the worklist, the dashboard's tiles and the API read: what
        # their plans asked for at 84,000 reviews (diagnosis/migrations/0013).
        indexes = [
            models.Index(
                fields=["analysis"],
                condition=models.Q(signed_at__isnull=False),
                name="review_signed_analysis",
            ),
            models.Index(
                fields=["-signed_at", "-id"],
                condition=models.Q(signed_at__isnull=False),
                name="review_signed_newest",
            ),
        ]
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
