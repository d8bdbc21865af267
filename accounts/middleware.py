"""Middleware for the portal's security policy: response headers and session time-outs (the
MFA requirement for doctors and clinic admins is accounts.mfa's)."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts.signals import SESSION_LOGIN_AT

SESSION_LAST_SEEN = "_portal_last_seen"
# Rewriting the session on every request costs a database write; a minute's precision is enough
# for a 30-minute idle limit.
LAST_SEEN_RESOLUTION_S = 60

DEFAULT_PERMISSIONS_POLICY = (
    "camera=(self), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"
)


class SecurityHeadersMiddleware:
    """Headers Django's SecurityMiddleware does not set: Content-Security-Policy and
    Permissions-Policy, and `Cache-Control: no-store` on every page shown to a signed-in user
    (patient data must not linger in a shared ward computer's browser cache)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # The policy is written once, in settings (base.py says why it is what it is).
        csp = getattr(settings, "CONTENT_SECURITY_POLICY", "")
        if csp and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = csp
        policy = getattr(settings, "PERMISSIONS_POLICY", DEFAULT_PERMISSIONS_POLICY)
        if policy and "Permissions-Policy" not in response:
            response["Permissions-Policy"] = policy
        # SecurityMiddleware sets these too when configured; make sure they are never missing.
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault(
            "Referrer-Policy", getattr(settings, "SECURE_REFERRER_POLICY", None) or "same-origin"
        )
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and "Cache-Control" not in response:
            response["Cache-Control"] = "no-store"
        return response


class SessionTimeoutMiddleware:
    """Log out a session idle longer than SESSION_IDLE_TIMEOUT_S, and any session older than
    SESSION_ABSOLUTE_TIMEOUT_S however busy (a stolen session cookie does not live forever)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = time.time()
            session = request.session
            login_at = session.get(SESSION_LOGIN_AT)
            if login_at is None:
                # A session from before this middleware (or force_login): start its clock now.
                session[SESSION_LOGIN_AT] = login_at = now
            last_seen = session.get(SESSION_LAST_SEEN, now)
            reason = None
            if now - last_seen > settings.SESSION_IDLE_TIMEOUT_S:
                reason = "idle"
            elif now - login_at > settings.SESSION_ABSOLUTE_TIMEOUT_S:
                reason = "absolute"
            if reason is not None:
                return self._expire(request, reason)
            if now - last_seen >= LAST_SEEN_RESOLUTION_S or SESSION_LAST_SEEN not in session:
                session[SESSION_LAST_SEEN] = now
        return self.get_response(request)

    def _expire(self, request: HttpRequest, reason: str) -> HttpResponse:
        request._logout_reason = f"timeout.{reason}"
        logout(request)
        if reason == "idle":
            minutes = settings.SESSION_IDLE_TIMEOUT_S // 60
            text = f"You were logged out after {minutes} minutes without activity."
        else:
            text = "Your session reached its maximum length; please log in again."
        messages.info(request, text)
        if request.path.startswith("/api/"):
            return HttpResponse(text, status=401, content_type="text/plain")
        return redirect(f"{reverse(settings.LOGIN_URL)}?next={request.path}")
