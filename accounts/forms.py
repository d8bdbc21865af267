"""Forms of the clinic admin's user management."""

from __future__ import annotations

from django import forms

from accounts.models import Role


class UserCreateForm(forms.Form):
    email = forms.EmailField()
    full_name = forms.CharField(max_length=200, label="Full name")
    role = forms.ChoiceField(choices=Role.choices)


class UserRoleForm(forms.Form):
    full_name = forms.CharField(max_length=200, label="Full name")
    role = forms.ChoiceField(choices=Role.choices)
