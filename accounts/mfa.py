"""Two-factor authentication: the roles that must set up an authenticator before doing
anything (settings.MFA_REQUIRED_ROLES), and MFA enrolment changes on the audit trail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from accounts.audit import audit_record


class MFARequiredMiddleware:
    """Send a user whose role is in MFA_REQUIRED_ROLES to the authenticator set-up page until
    they have one. Only the pages needed to set one up (and to log out) stay reachable."""

    ALWAYS_ALLOWED_PREFIXES = ("/accounts/", "/static/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        roles = getattr(settings, "MFA_REQUIRED_ROLES", ())
        if (
            roles
            and user is not None
            and user.is_authenticated
            and (user.role in roles or (user.is_superuser and "superuser" in roles))
            and not request.path.startswith(self.ALWAYS_ALLOWED_PREFIXES)
            and not has_authenticator(user)
        ):
            if request.path.startswith("/api/"):
                return HttpResponse(
                    "Two-factor authentication must be set up before using the API.",
                    status=403,
                    content_type="text/plain",
                )
            messages.warning(
                request,
                "Your role requires two-factor authentication: set up an authenticator app "
                "to continue.",
            )
            return redirect("mfa_activate_totp")
        return self.get_response(request)


def has_authenticator(user) -> bool:
    """True once the user has a TOTP authenticator (recovery codes alone are not a factor)."""
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def connect_audit_signals() -> None:
    """MFA enrolment changes matter to an auditor; allauth.mfa is optional in INSTALLED_APPS."""
    from django.apps import apps

    if not apps.is_installed("allauth.mfa"):
        return
    from allauth.mfa import signals as mfa_signals

    def _added(sender, request, user, authenticator, **kwargs: Any) -> None:
        audit_record(action="mfa.add", user=user, request=request, type=authenticator.type)

    def _removed(sender, request, user, authenticator, **kwargs: Any) -> None:
        audit_record(action="mfa.remove", user=user, request=request, type=authenticator.type)

    def _failed(sender, request, user, authenticator, **kwargs: Any) -> None:
        audit_record(action="mfa.failed", user=user, request=request, type=authenticator.type)

    mfa_signals.authenticator_added.connect(_added, dispatch_uid="audit_mfa_added", weak=False)
    mfa_signals.authenticator_removed.connect(
        _removed, dispatch_uid="audit_mfa_removed", weak=False
    )
    mfa_signals.authentication_failed.connect(_failed, dispatch_uid="audit_mfa_failed", weak=False)
