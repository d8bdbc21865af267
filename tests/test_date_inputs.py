"""Every date field of every portal form shows a saved date in the one format a browser's date
picker reads (ISO, 2027-03-01), so a reopened form keeps its dates (issue 13, item 2)."""

from __future__ import annotations

import datetime
import importlib
import inspect
import pkgutil

import pytest
from django import forms

from melanoma_portal.forms import DateInput

APPS = ("accounts", "patients", "diagnosis", "reports")


def _form_classes():
    for app in APPS:
        for name in (f"{app}.forms",):
            try:
                package = importlib.import_module(name)
            except ModuleNotFoundError:
                continue
            modules = [package]
            if hasattr(package, "__path__"):
                modules += [
                    importlib.import_module(f"{name}.{info.name}")
                    for info in pkgutil.iter_modules(package.__path__)
                ]
            for module in modules:
                for _, cls in inspect.getmembers(module, inspect.isclass):
                    if issubclass(cls, forms.BaseForm) and cls.__module__ == module.__name__:
                        yield cls


DATE_FIELDS = [
    pytest.param(cls, field_name, id=f"{cls.__name__}.{field_name}")
    for cls in _form_classes()
    for field_name, field in cls.base_fields.items()
    if isinstance(field, forms.DateField)
]


def test_the_portal_has_date_fields_to_check():
    names = {param.id for param in DATE_FIELDS}
    assert {
        "PatientForm.date_of_birth",
        "ReviewForm.follow_up_on",
        "ReviewAmendForm.follow_up_on",
        "HistopathologyForm.reported_on",
    } <= names


@pytest.mark.parametrize(("form_class", "field_name"), DATE_FIELDS)
def test_a_saved_date_is_shown_in_iso_format(form_class, field_name, settings):
    settings.LANGUAGE_CODE = "en-gb"  # whose first input format is 01/03/2027
    field = form_class.base_fields[field_name]

    html = field.widget.render(field_name, datetime.date(2027, 3, 1))

    assert isinstance(field.widget, DateInput)
    assert 'type="date"' in html and 'value="2027-03-01"' in html
