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


class ClinicSignOnForm(forms.Form):
    """The clinic's hospital identity provider (accounts.services.sign_on checks the rules)."""

    display_name = forms.CharField(
        max_length=100, label="Name on the sign-in button", help_text="e.g. Vienna General Hospital"
    )
    issuer = forms.URLField(
        max_length=300,
        assume_scheme="https",
        label="Issuer URL",
        help_text="From the provider: e.g. https://login.microsoftonline.com/<tenant>/v2.0",
    )
    client_id = forms.CharField(max_length=200, label="Client ID")
    client_secret = forms.CharField(
        required=False,
        label="Client secret",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted. Leave empty to keep the one stored.",
    )
    allowed_email_domains = forms.CharField(
        label="Allowed e-mail domains",
        help_text="Space or comma separated, e.g. hospital.example. Others are refused.",
    )
    enabled = forms.BooleanField(required=False, label="Hospital sign-in is on")
    create_unknown_as_staff = forms.BooleanField(
        required=False,
        label="Create an account for unknown people, as clinic staff",
        help_text="Off: only people with a portal account of this clinic may sign in.",
    )
    provider_enforces_mfa = forms.BooleanField(
        required=False,
        label="The provider enforces two-factor authentication",
        help_text="Then the portal asks for no code of its own, unless the sign-in's amr claim "
        "shows a password alone.",
    )
    role_claim = forms.CharField(
        required=False,
        max_length=100,
        label="Claim that sets the role",
        help_text="Empty (recommended): roles are set here, never by the provider.",
    )
    role_claim_values = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Claim values and roles",
        help_text="One per line: value = admin, doctor or staff (e.g. derm-doctors = doctor).",
    )

    def clean_role_claim_values(self) -> dict[str, str]:
        mapping = {}
        for number, line in enumerate(self.cleaned_data["role_claim_values"].splitlines(), 1):
            if not line.strip():
                continue
            value, sep, role = line.partition("=")
            if not sep or not value.strip() or role.strip() not in Role.values:
                raise forms.ValidationError(f"Line {number}: write value = admin, doctor or staff.")
            mapping[value.strip()] = role.strip()
        return mapping
