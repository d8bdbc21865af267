"""The patient form; the service decides what is saved (and refuses a duplicate MRN)."""

from __future__ import annotations

from django import forms

from patients.models import Patient
from patients.services import PATIENT_FIELDS


class PatientForm(forms.ModelForm):
    class Meta:
        model = Patient
        fields = PATIENT_FIELDS
        widgets = {
            "date_of_birth": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "address": forms.Textarea(attrs={"rows": 3}),
        }
        labels = {"fitzpatrick_skin_type": "Fitzpatrick skin type (optional)"}

    def clean_mrn(self) -> str:
        return self.cleaned_data["mrn"].strip()
