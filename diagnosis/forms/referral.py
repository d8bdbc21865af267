"""The form that closes a referral; diagnosis.services.referral checks the same rule again."""

from __future__ import annotations

from typing import Any

from django import forms

from diagnosis.models import Histopathology


class ReferralCloseForm(forms.Form):
    outcome = forms.CharField(
        label="Outcome",
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="What came of the referral, e.g. 'Seen 12 May, excised; await histology'.",
    )
    with_histopathology = forms.BooleanField(
        label="Attach the lesion's histology result",
        required=False,
    )

    def __init__(self, *args: Any, histopathology: Histopathology | None = None, **kwargs: Any):
        """Without a recorded histology result there is nothing to attach: the box is left out,
        and the outcome alone closes the referral."""
        super().__init__(*args, **kwargs)
        if histopathology is None:
            del self.fields["with_histopathology"]
        else:
            self.fields["with_histopathology"].help_text = (
                f"{histopathology.diagnosis_label}, reported {histopathology.reported_on:%d %b %Y}"
                f" (lab reference {histopathology.lab_reference})."
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("outcome", "").strip() and not data.get("with_histopathology"):
            message = "Write the outcome to close the referral."
            if "with_histopathology" in self.fields:
                message = (
                    "Write the outcome, or attach the lesion's histology result, to close the "
                    "referral."
                )
            self.add_error("outcome", message)
        return data
