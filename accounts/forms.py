"""Forms of the clinic admin's user management, and allauth's password reset narrowed to the
account's own address."""

from __future__ import annotations

from allauth.account.forms import ResetPasswordForm
from django import forms

from accounts.models import Role, User


class UserCreateForm(forms.Form):
    email = forms.EmailField()
    full_name = forms.CharField(max_length=200, label="Full name")
    role = forms.ChoiceField(choices=Role.choices)


class UserRoleForm(forms.Form):
    full_name = forms.CharField(max_length=200, label="Full name")
    role = forms.ChoiceField(choices=Role.choices)


class UserEmailForm(forms.Form):
    email = forms.EmailField(
        label="New e-mail address",
        help_text="The account signs in with this address and receives password resets there.",
    )


class PasswordResetForm(ResetPasswordForm):
    """allauth's, mailing only the active account whose own address (User.email) was typed.
    allauth's looks in its EmailAddress table too, where an address attached to another account
    sent that account's reset link to whoever owned the address (issue 11)."""

    def clean_email(self) -> str:
        email = super().clean_email()
        self.users = list(User.objects.filter(email__iexact=email.strip(), is_active=True))
        return email


class ApiTokenIssueForm(forms.Form):
    """How many days a new token is valid for; empty: the default. The service checks bounds."""

    days = forms.IntegerField(required=False, label="Valid for (days)")
