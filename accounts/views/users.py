"""Clinic admins manage their own clinic's accounts."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.decorators import clinic_role_required
from accounts.forms import UserCreateForm, UserEmailForm, UserRoleForm
from accounts.models import Role
from accounts.selectors import users as selectors
from accounts.services import users as services
from melanoma_portal.forms import apply_validation_error


@clinic_role_required(Role.ADMIN)
def user_list(request: HttpRequest) -> HttpResponse:
    rows = selectors.clinic_user_rows(user=request.user)
    return render(request, "accounts/user_list.html", {"rows": rows})


@clinic_role_required(Role.ADMIN)
def user_create(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_create(actor=request.user, request=request, **form.cleaned_data)
        except ValidationError as error:
            apply_validation_error(form, error)
        else:
            messages.success(
                request, f"Account created; a set-password email went to {user.email}."
            )
            return redirect("accounts:user_list")
    return render(request, "accounts/user_form.html", {"form": form, "title": "New user"})


@clinic_role_required(Role.ADMIN)
def user_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    account = selectors.clinic_user_get(user=request.user, user_id=user_id)
    initial = {"full_name": account.full_name, "role": account.role}
    form = UserRoleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.user_set_role(
                actor=request.user, user=account, request=request, **form.cleaned_data
            )
        except ValidationError as error:
            apply_validation_error(form, error)
        else:
            messages.success(request, f"{account.email} is now {account.get_role_display()}.")
            return redirect("accounts:user_list")
    return render(
        request,
        "accounts/user_form.html",
        {"form": form, "title": account.email, "account": account},
    )


@clinic_role_required(Role.ADMIN)
@require_POST
def user_deactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    account = selectors.clinic_user_get(user=request.user, user_id=user_id)
    services.user_deactivate(actor=request.user, user=account, request=request)
    messages.success(request, f"{account.email} can no longer sign in.")
    return redirect("accounts:user_list")


@clinic_role_required(Role.ADMIN)
@require_POST
def user_reactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    account = selectors.clinic_user_get(user=request.user, user_id=user_id)
    services.user_reactivate(actor=request.user, user=account, request=request)
    messages.success(request, f"{account.email} can sign in again.")
    return redirect("accounts:user_list")


@clinic_role_required(Role.ADMIN)
@require_POST
def user_resend(request: HttpRequest, user_id: int) -> HttpResponse:
    account = selectors.clinic_user_get(user=request.user, user_id=user_id)
    services.send_set_password_email(user=account, request=request)
    messages.success(request, f"A new set-password email went to {account.email}.")
    return redirect("accounts:user_list")


@clinic_role_required(Role.ADMIN)
@require_POST
def user_unlock(request: HttpRequest, user_id: int) -> HttpResponse:
    account = selectors.clinic_user_get(user=request.user, user_id=user_id)
    services.user_unlock(actor=request.user, user=account, request=request)
    messages.success(request, f"{account.email} can try to sign in again.")
    return redirect("accounts:user_list")


@clinic_role_required(Role.ADMIN)
def user_email(request: HttpRequest, user_id: int) -> HttpResponse:
    account = selectors.clinic_user_get(user=request.user, user_id=user_id)
    form = UserEmailForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.user_change_email(
                actor=request.user, user=account, request=request, **form.cleaned_data
            )
        except ValidationError as error:
            apply_validation_error(form, error)
        else:
            messages.success(request, f"{account.email} is now this account's sign-in address.")
            return redirect("accounts:user_list")
    return render(
        request,
        "accounts/user_form.html",
        {"form": form, "title": f"E-mail address of {account.email}", "account": account},
    )
