"""The form for a lesion's histology result; diagnosis.services.histopathology checks the
same rules again."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone

from diagnosis.models import DiagnosisChoice
from melanoma_portal.forms import DateInput


class HistopathologyForm(forms.Form):
    diagnosis = forms.ChoiceField(
        label="Histological diagnosis",
        choices=[("", "— choose —"), *DiagnosisChoice.choices],
        error_messages={"required": "Choose the histological diagnosis."},
    )
    diagnosis_other = forms.CharField(
        label="Other diagnosis (when 'Other')", max_length=200, required=False
    )
    reported_on = forms.DateField(
        label="Date of the histology report",
        widget=DateInput(),
        error_messages={"required": "Give the date of the histology report."},
    )
    lab_reference = forms.CharField(
        label="Laboratory reference",
        max_length=100,
        error_messages={"required": "Give the laboratory's reference."},
    )
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if (
            data.get("diagnosis") == DiagnosisChoice.OTHER
            and not data.get("diagnosis_other", "").strip()
        ):
            self.add_error("diagnosis_other", "Name the diagnosis when choosing 'Other'.")
        reported_on = data.get("reported_on")
        if reported_on is not None and reported_on > timezone.localdate():
            self.add_error("reported_on", "The histology report cannot be dated in the future.")
        return data
