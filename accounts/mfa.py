"""Two-factor authentication: the roles that must set up an authenticator before doing
anything (settings.MFA_REQUIRED_ROLES), the Django admin that everyone enters with a code, and
MFA enrolment changes on the audit trail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from allauth.account.authentication import get_authentication_records
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts.audit import audit_record


def mfa_required_for(user) -> bool:
    """Whether the user's role (or being a superuser) is in settings.MFA_REQUIRED_ROLES."""
    roles = getattr(settings, "MFA_REQUIRED_ROLES", ())
    return bool(roles) and (user.role in roles or (user.is_superuser and "superuser" in roles))


def mfa_by_provider_this_session(request: HttpRequest) -> bool:
    """Whether this session's sign-in went through the clinic's identity provider, which the
    clinic declared enforces two-factor authentication and whose `amr` claim did not say
    otherwise (accounts.services.sign_on). The Django admin still wants the portal's own."""
    from accounts.signals import SESSION_MFA_BY_PROVIDER

    return bool(request.session.get(SESSION_MFA_BY_PROVIDER))


def used_mfa_this_session(request: HttpRequest) -> bool:
    """Whether this session's log-in (or a later re-authentication) included a code from an
    authenticator or a recovery code, as allauth records it."""
    records = get_authentication_records(request, request.user)
    return any(record.get("method") == "mfa" for record in records)


class MFARequiredMiddleware:
    """Send a user whose role is in MFA_REQUIRED_ROLES to the authenticator set-up page until
    they have one. Only the pages needed to set one up (and to log out) stay reachable.

    The Django admin can change any clinic's accounts, so whoever enters it (a superuser, a
    clinic admin or an auditor with admin access) must have an authenticator and must have
    used it in this session, whatever MFA_REQUIRED_ROLES says: without one they are sent to set
    it up, with one to enter a code (allauth's re-authentication), then back to the admin.
    """

    ALWAYS_ALLOWED_PREFIXES = ("/accounts/", "/static/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        admin_gate = self._admin_gate(request, user)
        if admin_gate is not None:
            return admin_gate
        if (
            mfa_required_for(user)
            and not request.path.startswith(self.ALWAYS_ALLOWED_PREFIXES)
            and not has_authenticator(user)
            and not mfa_by_provider_this_session(request)
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

    def _admin_gate(self, request: HttpRequest, user) -> HttpResponse | None:
        admin_index = reverse("admin:index")
        if (
            not request.path.startswith(admin_index)
            or request.path in (reverse("admin:login"), reverse("admin:logout"))
            or not admin.site.has_permission(request)  # the admin refuses them itself
        ):
            return None
        if not has_authenticator(user):
            messages.warning(
                request,
                "The site administration needs two-factor authentication: set up an "
                "authenticator app, then open the administration again.",
            )
            return redirect("mfa_activate_totp")
        if not used_mfa_this_session(request):
            messages.info(
                request,
                "Enter a code from your authenticator app to open the site administration.",
            )
            query = urlencode({"next": request.get_full_path()})
            return redirect(f"{reverse('mfa_reauthenticate')}?{query}")
        return None


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
