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


class ReferralPolicyForm(forms.Form):
    """How long the clinic's referrals have; accounts.services.clinic checks the same rules."""

    referral_days_urgent = forms.IntegerField(
        label="Days to see an urgent referral",
        min_value=1,
        max_value=365,
        help_text="Refer urgently (e.g. suspected melanoma). 14 days is the UK's two-week wait.",
        error_messages={"required": "Give the number of days for an urgent referral."},
    )
    referral_days_soon = forms.IntegerField(
        label="Days to see a soon referral",
        min_value=1,
        max_value=365,
        help_text="Refer soon (e.g. suspected basal cell carcinoma). Default: 42 days (6 weeks).",
        error_messages={"required": "Give the number of days for a soon referral."},
    )

    def clean(self) -> dict:
        data = super().clean()
        urgent, soon = data.get("referral_days_urgent"), data.get("referral_days_soon")
        if urgent is not None and soon is not None and soon < urgent:
            self.add_error(
                "referral_days_soon", "A soon referral cannot be due before an urgent one."
            )
        return data


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
