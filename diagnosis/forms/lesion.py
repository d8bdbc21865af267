"""Forms for recording a lesion and uploading its dermoscopic image."""

from __future__ import annotations

import uuid

from django import forms
from django.db.models import QuerySet

from diagnosis.models import Laterality, Lesion

EMPTY_FILE = {"empty": "The file is empty (0 bytes); choose the image again."}


class LesionForm(forms.ModelForm):
    """A lesion's site (on the body map, or from the list), side, size and label. The body
    map (static/js/body_map.js) fills in the site, the side and `body_map_region`; without
    script, the lists are the form."""

    class Meta:
        model = Lesion
        fields = ["anatomic_site", "laterality", "size_mm", "label", "body_map_region"]
        labels = {
            "anatomic_site": "Anatomic site",
            "laterality": "Side (optional)",
            "size_mm": "Size in mm (optional)",
            "label": "Label (optional)",
        }
        widgets = {
            "body_map_region": forms.HiddenInput,
            "size_mm": forms.NumberInput(attrs={"step": "0.1", "min": "0.1", "max": "300"}),
        }
        error_messages = {
            "size_mm": {
                "max_decimal_places": "Give the size to one decimal place (e.g. 4.5).",
                "invalid": "Enter the size as a number of millimetres, e.g. 6 or 4.5.",
            },
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["laterality"].choices = [("", "Not recorded"), *Laterality.choices]


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
    # Shown only after a duplicate warning (diagnosis.services.image.DuplicateImage).
    allow_duplicate = forms.BooleanField(
        required=False,
        label="Upload anyway: I have checked the image and the patient",
        widget=forms.HiddenInput,
    )

    def __init__(self, *args, lesions: QuerySet[Lesion], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["lesion"].queryset = lesions

    def ask_to_confirm_duplicate(self) -> None:
        """After a duplicate warning: show the "upload anyway" box, unticked."""
        field = self.fields["allow_duplicate"]
        field.widget = forms.CheckboxInput()
        if self.is_bound:
            data = self.data.copy()
            data["allow_duplicate"] = ""
            self.data = data

    def clean(self) -> dict:
        cleaned = super().clean()
        image, photo = cleaned.get("image"), cleaned.get("photo")
        if image and photo:
            raise forms.ValidationError("Choose a file or take a photo, not both.")
        if not image and not photo and not (self.has_error("image") or self.has_error("photo")):
            self.add_error("image", "Choose an image file or take a photo.")
        cleaned["upload"] = image or photo
        return cleaned
