"""Form helpers shared by every app's views."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

# What `<input type="date">` reads and sends, in every language.
ISO_DATE = "%Y-%m-%d"


class DateInput(forms.DateInput):
    """A date picker (`<input type="date">`) that shows a saved date again.

    The browser's date input reads and sends only ISO dates (2027-03-01), whatever the page's
    language; Django's own DateInput writes the value in the locale's first input format
    (01/03/2027 for en-gb), which the browser cannot read, so a saved date came back blank.
    Every date field of every form uses this widget (tests/test_date_inputs.py checks).
    """

    input_type = "date"

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__(attrs, format=ISO_DATE)


def apply_validation_error(form: forms.Form, error: ValidationError) -> None:
    """Show a service's ValidationError on the form that collected its input.

    Services validate on their own (the API calls them too), so a view only learns of a
    duplicate MRN or a locked review from the exception; errors naming a form field go next to
    it, the rest at the top, and what was typed stays in the form.
    """
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)
