"""A doctor's override of the image gate: the written reason it needs.

The service (diagnosis.services.analysis.analysis_override_gate) checks the same rule again,
so the API gets the same answer.
"""

from __future__ import annotations

from django import forms


class GateOverrideForm(forms.Form):
    reason = forms.CharField(
        label="Why should this image be analysed anyway?",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        strip=True,
        help_text=(
            "For example: a dermoscopic image from a device the gate does not know, checked by "
            "eye. Shown with the result, with your name."
        ),
        error_messages={
            "required": "Say why this image should be analysed although the gate refused it."
        },
    )
