"""Lesions and their dermoscopic images."""

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
