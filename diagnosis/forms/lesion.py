"""Forms for recording a lesion and uploading its dermoscopic image."""

from __future__ import annotations

import uuid

from django import forms
from django.db.models import QuerySet

from diagnosis.models import Lesion

EMPTY_FILE = {"empty": "The file is empty (0 bytes); choose the image again."}


class LesionForm(forms.ModelForm):
    class Meta:
        model = Lesion
        fields = ["anatomic_site", "label"]
        labels = {"label": "Label (optional)"}


class ImageUploadForm(forms.Form):
    """One dermoscopic image for one lesion of a patient.

    Two file inputs, one form: `image` picks a file, `photo` opens a phone's camera
    (`capture`). `submission_token` is minted when the form is shown; the service turns a
    second POST with the same token into the first upload's analysis.
    """

    lesion = forms.ModelChoiceField(
        queryset=Lesion.objects.none(),
        empty_label="Choose the lesion…",
        error_messages={
            "required": "Choose the lesion this image shows (record a new lesion first if needed).",
            "invalid_choice": "That lesion is not one of this patient's lesions; choose another.",
        },
    )
    image = forms.FileField(
        required=False,
        label="Image file (JPEG or PNG)",
        error_messages=EMPTY_FILE,
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/*"}),
    )
    photo = forms.FileField(
        required=False,
        label="…or take a photo",
        error_messages=EMPTY_FILE,
        widget=forms.ClearableFileInput(attrs={"accept": "image/*", "capture": "environment"}),
    )
    submission_token = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)

    def __init__(self, *args, lesions: QuerySet[Lesion], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["lesion"].queryset = lesions

    def clean(self) -> dict:
        cleaned = super().clean()
        image, photo = cleaned.get("image"), cleaned.get("photo")
        if image and photo:
            raise forms.ValidationError("Choose a file or take a photo, not both.")
        if not image and not photo and not (self.has_error("image") or self.has_error("photo")):
            self.add_error("image", "Choose an image file or take a photo.")
        cleaned["upload"] = image or photo
        return cleaned
