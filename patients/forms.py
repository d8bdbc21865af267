"""The patient form, and the confirmation of a patient's erasure; the services decide what is
saved (and refuse a duplicate MRN, a wrong confirmation)."""

from __future__ import annotations

from django import forms

from melanoma_portal.forms import DateInput
from patients.models import Patient
from patients.services.records import PATIENT_FIELDS


class PatientForm(forms.ModelForm):
    class Meta:
        model = Patient
        fields = PATIENT_FIELDS
        widgets = {
            "date_of_birth": DateInput(),
            "address": forms.Textarea(attrs={"rows": 3}),
        }
        labels = {"fitzpatrick_skin_type": "Fitzpatrick skin type (optional)"}

    def clean_mrn(self) -> str:
        return self.cleaned_data["mrn"].strip()


class EraseForm(forms.Form):
    confirm_mrn = forms.CharField(
        label="Type the patient's MRN to confirm", max_length=64, strip=True
    )
    reason = forms.CharField(
        label="Reason (for the audit trail; no health data)",
        max_length=200,
        required=False,
    )
