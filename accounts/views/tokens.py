"""The clinic admin's page for API tokens (/clinic/api-tokens/)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.decorators import clinic_role_required
from accounts.forms import ApiTokenIssueForm
from accounts.models import Role
from accounts.services.tokens import (
    api_token_issue,
    api_token_list,
    api_token_revoke,
    token_days_allowed,
)


def _page(request: HttpRequest, **context) -> HttpResponse:
    fewest, default, most = token_days_allowed()
    context.update(
        rows=api_token_list(user=request.user), fewest=fewest, default_days=default, most=most
    )
    return render(request, "accounts/api_tokens.html", context)


@clinic_role_required(Role.ADMIN)
def api_token_page(request: HttpRequest) -> HttpResponse:
    return _page(request)


@require_POST
@clinic_role_required(Role.ADMIN)
def api_token_issue_view(request: HttpRequest, user_id: int) -> HttpResponse:
    form = ApiTokenIssueForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(form.errors["days"])
        issued = api_token_issue(
            actor=request.user, user_id=user_id, days=form.cleaned_data["days"], request=request
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("api_tokens:list")
    # Rendered, not redirected: the key is shown this once and never stored in a message cookie.
    return _page(request, new_token=issued)


@require_POST
@clinic_role_required(Role.ADMIN)
def api_token_revoke_view(request: HttpRequest, user_id: int) -> HttpResponse:
    if api_token_revoke(actor=request.user, user_id=user_id, request=request):
        messages.success(request, "Token revoked; requests with it are refused from now on.")
    else:
        messages.info(request, "That account had no token.")
    return redirect("api_tokens:list")
