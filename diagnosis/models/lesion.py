"""Lesions and their dermoscopic images."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

# A lesion's largest diameter, in millimetres: a dermatoscope's field of view is about 25 mm,
# and anything over 300 mm is a typing error (centimetres typed as millimetres, say).
SIZE_MIN_MM = Decimal("0.1")
SIZE_MAX_MM = Decimal("300")


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


class Laterality(models.TextChoices):
    """The patient's side, as FHIR's bodysite-laterality names it (diagnosis.fhir)."""

    LEFT = "left", "Left"
    RIGHT = "right", "Right"
    MIDLINE = "midline", "Midline"


class Lesion(models.Model):
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="lesions"
    )
    anatomic_site = models.CharField(max_length=20, choices=AnatomicSite.choices)
    label = models.CharField(max_length=100, blank=True, help_text="e.g. 'left shoulder, 2 cm'")
    laterality = models.CharField(
        max_length=10, choices=Laterality.choices, blank=True, help_text="The patient's side"
    )
    size_mm = models.DecimalField(
        "Size (mm)",
        max_digits=4,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[
            MinValueValidator(SIZE_MIN_MM, message="The size is at least 0.1 mm."),
            MaxValueValidator(
                SIZE_MAX_MM,
                message="The size is at most 300 mm; enter millimetres, not centimetres.",
            ),
        ],
        help_text="Largest diameter in millimetres, e.g. 6 or 4.5",
    )
    # The region of the body map (diagnosis.body_map.REGIONS) the site was chosen on, if it was:
    # it says front or back, and where the patient page puts the lesion's mark.
    body_map_region = models.CharField(max_length=40, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(laterality__in=["", *Laterality.values]),
                name="lesion_laterality_known",
            ),
            models.CheckConstraint(
                condition=models.Q(size_mm__isnull=True)
                | models.Q(size_mm__gte=SIZE_MIN_MM, size_mm__lte=SIZE_MAX_MM),
                name="lesion_size_in_range",
            ),
        ]

    def __str__(self) -> str:
        site = self.get_anatomic_site_display()
        if self.laterality in (Laterality.LEFT, Laterality.RIGHT):
            site = f"{site}, {self.get_laterality_display().lower()}"
        return f"{site} - {self.label}" if self.label else site

    def clean(self) -> None:
        """A body map region must lie on the chosen site (and side): the map and the drop-down
        cannot say two different things about one lesion."""
        from diagnosis.body_map import REGIONS

        if not self.body_map_region:
            return
        region = REGIONS.get(self.body_map_region)
        if region is None:
            raise ValidationError({"body_map_region": "Choose the site on the body map again."})
        if region.site != self.anatomic_site:
            raise ValidationError(
                {
                    "anatomic_site": f"The body map shows {region.label.lower()}, not "
                    f"{self.get_anatomic_site_display().lower()}: choose the site again on the "
                    "map or in the list."
                }
            )
        if region.laterality and self.laterality and region.laterality != self.laterality:
            raise ValidationError(
                {
                    "laterality": f"The body map shows the {region.laterality} side; choose the "
                    "side again."
                }
            )

    @property
    def site_text(self) -> str:
        """'Upper extremity, left, 6 mm': the site with what else was recorded of it."""
        parts = [self.get_anatomic_site_display()]
        if self.laterality:
            parts.append(self.get_laterality_display().lower())
        if self.size_mm is not None:
            parts.append(f"{self.size_mm.normalize():f} mm")
        return ", ".join(parts)

    @property
    def audit_patient_id(self) -> int:
        """The patient an audit event about this record names (accounts.audit)."""
        return self.patient_id


def image_upload_path(instance: DermoscopicImage, filename: str) -> str:
    # Random names: a storage listing must not reveal patients or clinics' case counts by name.
    return f"images/{uuid.uuid4().hex}.{filename.rsplit('.', 1)[-1].lower()}"


class DermoscopicImage(models.Model):
    lesion = models.ForeignKey(Lesion, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(upload_to=image_upload_path, max_length=255, blank=True)
    thumbnail = models.FileField(upload_to=image_upload_path, max_length=255, blank=True)
    content_type = models.CharField(max_length=20)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    # A 256-bit difference hash of the picture (diagnosis.image_fingerprint), hex: the same
    # picture re-encoded, resized or re-saved has a hash a few bits away. Empty for images
    # stored before it was computed.
    perceptual_hash = models.CharField(max_length=64, blank=True)
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
    def visit_date(self) -> datetime.date:
        """The visit an image belongs to: the clinic's local day it was uploaded. Images of
        one lesion taken the same day are one visit (review by lesion, the timeline)."""
        return timezone.localdate(self.uploaded_at)

    @property
    def audit_patient_id(self) -> int:
        return self.lesion.patient_id
