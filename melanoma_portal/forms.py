"""Form helpers shared by every app's views."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError


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
