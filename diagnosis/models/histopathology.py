"""The histology result of a lesion, which later confirms or refutes the AI and the doctors."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from diagnosis.models.lesion import Lesion
from diagnosis.models.review import DiagnosisChoice


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
