"""The form for a lesion's histology result, with the service's own rules
(diagnosis.services.histopathology.histopathology_rule_errors), which the service checks again."""

from __future__ import annotations

from typing import Any

from django import forms

from diagnosis.models import DiagnosisChoice
from diagnosis.services.histopathology import histopathology_rule_errors
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
        errors = histopathology_rule_errors(
            diagnosis=data.get("diagnosis"),
            diagnosis_other=data.get("diagnosis_other", ""),
            reported_on=data.get("reported_on"),
        )
        for field, message in errors.items():
            if field not in self.errors:
                self.add_error(field, message)
        return data
