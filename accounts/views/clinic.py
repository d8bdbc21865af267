"""The clinic's own settings, for its clinic admin: the referral policy."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.decorators import clinic_role_required
from accounts.forms import ReferralPolicyForm
from accounts.models import Role
from accounts.services.clinic import clinic_set_referral_policy
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
