"""The clinic's own settings, for its clinic admin: the referral policy and the hospital
sign-in."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.decorators import clinic_role_required
from accounts.forms import ClinicSignOnForm, ReferralPolicyForm
from accounts.models import Role
from accounts.selectors.sign_on import clinic_sign_on_get
from accounts.services.clinic import clinic_set_referral_policy
from accounts.services.sign_on import clinic_local_passwords_set, clinic_sign_on_save
from melanoma_portal.forms import apply_validation_error


@clinic_role_required(Role.ADMIN)
def referral_policy(request: HttpRequest) -> HttpResponse:
    clinic = request.user.clinic
    initial = {
        "referral_days_urgent": clinic.referral_days_urgent,
        "referral_days_soon": clinic.referral_days_soon,
    }
    form = ReferralPolicyForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            clinic_set_referral_policy(actor=request.user, request=request, **form.cleaned_data)
        except ValidationError as error:
            apply_validation_error(form, error)
        else:
            messages.success(request, "Referral policy saved; it applies to new referrals.")
            return redirect("accounts:referral_policy")
    status = 400 if form.errors else 200
    return render(request, "accounts/referral_policy.html", {"form": form}, status=status)


@clinic_role_required(Role.ADMIN)
def sign_on(request: HttpRequest) -> HttpResponse:
    """The clinic's hospital identity provider, and whether local passwords still work."""
    clinic = request.user.clinic
    current = clinic_sign_on_get(user=request.user)
    initial = {}
    if current is not None:
        initial = {
            "display_name": current.display_name,
            "issuer": current.issuer,
            "client_id": current.client_id,
            "allowed_email_domains": " ".join(current.allowed_email_domains),
            "enabled": current.enabled,
            "create_unknown_as_staff": current.create_unknown_as_staff,
            "provider_enforces_mfa": current.provider_enforces_mfa,
            "role_claim": current.role_claim,
            "role_claim_values": "\n".join(
                f"{value} = {role}" for value, role in current.role_claim_values.items()
            ),
        }
    form = ClinicSignOnForm(request.POST or None, initial=initial)
    if request.method == "POST" and "local_passwords" in request.POST:
        try:
            clinic_local_passwords_set(
                actor=request.user,
                clinic=clinic,
                allowed=request.POST["local_passwords"] == "on",
                request=request,
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, "Local passwords setting saved.")
        return redirect("accounts:sign_on")
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        data["client_secret"] = data["client_secret"] or None  # empty keeps the stored one
        try:
            clinic_sign_on_save(actor=request.user, clinic=clinic, request=request, **data)
        except ValidationError as error:
            apply_validation_error(form, error)
        else:
            messages.success(request, "Hospital sign-in saved.")
            return redirect("accounts:sign_on")
    callback = request.build_absolute_uri(f"/accounts/oidc/clinic-{clinic.pk}/login/callback/")
    context = {"form": form, "sign_on": current, "redirect_uri": callback}
    return render(request, "accounts/sign_on.html", context, status=400 if form.errors else 200)
