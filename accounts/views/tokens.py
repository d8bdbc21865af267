"""The clinic admin's page for API tokens (/clinic/api-tokens/)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.decorators import clinic_role_required
from accounts.models import Role
from accounts.services.tokens import api_token_issue, api_token_list, api_token_revoke


@clinic_role_required(Role.ADMIN)
def api_token_page(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/api_tokens.html", {"rows": api_token_list(user=request.user)})


@require_POST
@clinic_role_required(Role.ADMIN)
def api_token_issue_view(request: HttpRequest, user_id: int) -> HttpResponse:
    try:
        token = api_token_issue(actor=request.user, user_id=user_id, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("api_tokens:list")
    # Rendered, not redirected: the key is shown this once and never stored in a message cookie.
    return render(
        request,
        "accounts/api_tokens.html",
        {"rows": api_token_list(user=request.user), "new_token": token},
    )


@require_POST
@clinic_role_required(Role.ADMIN)
def api_token_revoke_view(request: HttpRequest, user_id: int) -> HttpResponse:
    if api_token_revoke(actor=request.user, user_id=user_id, request=request):
        messages.success(request, "Token revoked; requests with it are refused from now on.")
    else:
        messages.info(request, "That account had no token.")
    return redirect("api_tokens:list")
