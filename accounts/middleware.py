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
# for a 30-minute idle limit (a tenth of a shorter one).
LAST_SEEN_RESOLUTION_S = 60
# Sent by the portal's own scripts when they poll (an analysis's status, the dashboard's live
# queue, the idle-timeout clock): such a request is no sign of a person at the screen, so it
# does not keep the session alive, and an expired session answers it 401 instead of a redirect.
BACKGROUND_HEADER = "HTTP_X_PORTAL_BACKGROUND"


def is_background(request: HttpRequest) -> bool:
    return request.META.get(BACKGROUND_HEADER) == "1"


def idle_seconds_left(request: HttpRequest) -> float:
    """Seconds until this session is logged out for inactivity (or for its absolute age)."""
    session = request.session
    now = time.time()
    idle_end = session.get(SESSION_LAST_SEEN, now) + settings.SESSION_IDLE_TIMEOUT_S
    absolute_end = session.get(SESSION_LOGIN_AT, now) + settings.SESSION_ABSOLUTE_TIMEOUT_S
    return max(0.0, min(idle_end, absolute_end) - now)


def mark_active(request: HttpRequest) -> None:
    """The person is here (they asked to stay signed in): the idle clock starts again."""
    request.session[SESSION_LAST_SEEN] = time.time()


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
    SESSION_ABSOLUTE_TIMEOUT_S however busy (a stolen session cookie does not live forever).

    Pages warn a minute before (static/js/session_timeout.js, asking accounts.session), so the
    person can stay signed in, and keep a half-typed form to restore after the next log-in."""

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
            resolution = min(LAST_SEEN_RESOLUTION_S, settings.SESSION_IDLE_TIMEOUT_S / 10)
            if SESSION_LAST_SEEN not in session or (
                now - last_seen >= resolution and not is_background(request)
            ):
                session[SESSION_LAST_SEEN] = now
        return self.get_response(request)

    def _expire(self, request: HttpRequest, reason: str) -> HttpResponse:
        request._logout_reason = f"timeout.{reason}"
        logout(request)
        if reason == "idle":
            idle = settings.SESSION_IDLE_TIMEOUT_S
            length = f"{idle // 60} minutes" if idle >= 120 else f"{idle} seconds"
            text = f"You were logged out after {length} without activity."
        else:
            text = "Your session reached its maximum length; please log in again."
        messages.info(request, text)
        if request.path.startswith("/api/") or is_background(request):
            return HttpResponse(text, status=401, content_type="text/plain")
        return redirect(f"{reverse(settings.LOGIN_URL)}?next={request.path}")
