"""One door in: pages that stand in for other apps' sign-in pages so that every log-in goes
through allauth, with its lock-out and two-factor authentication.

Django's admin has a log-in form of its own that checks a password and nothing else: no
lock-out, no authenticator code. `admin_login` replaces it (mounted at /admin/login/, before
the admin's URLs) and sends the visitor to allauth's log-in page, then back to the admin; the
admin itself then asks for two-factor authentication (accounts.mfa.MFARequiredMiddleware).

allauth's e-mail management page (/accounts/email/) let anyone attach any address to their
account, another clinic's doctor's included, and sign in or reset a password by it. An account
has one address, which its clinic admin changes (accounts.services.users.user_change_email);
`email_managed_by_clinic` stands in for that page and changes nothing.

These views answer anonymous visitors and show no clinic data, so they declare no clinic role
(tools/check_static_rules.py looks at `views` modules, where every page shows clinic data).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme


def _safe_next(request: HttpRequest, default: str) -> str:
    candidate = request.GET.get("next") or request.POST.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def admin_login(request: HttpRequest) -> HttpResponse:
    """/admin/login/: never checks a password. An anonymous visitor goes to allauth's log-in
    page (and returns to the admin afterwards); a signed-in admin user goes on to the admin."""
    admin_index = reverse("admin:index")
    next_url = _safe_next(request, admin_index)
    user = request.user
    if not user.is_authenticated:
        query = urlencode({"next": next_url})
        return redirect(f"{reverse(settings.LOGIN_URL)}?{query}")
    if admin.site.has_permission(request):  # superusers, staff, clinic admins
        return redirect(next_url)
    return render(
        request,
        "account/admin_refused.html",
        {"message": "Your account cannot use the site administration."},
        status=403,
    )


EMAIL_MANAGED_BY_CLINIC = (
    "Your e-mail address is managed by your clinic's administrator: ask them to change it."
)


def email_managed_by_clinic(request: HttpRequest) -> HttpResponse:
    """/accounts/email/: says who changes an address; a submitted form is refused (403)."""
    return render(
        request,
        "account/email_managed.html",
        {"message": EMAIL_MANAGED_BY_CLINIC},
        status=200 if request.method in ("GET", "HEAD") else 403,
    )
