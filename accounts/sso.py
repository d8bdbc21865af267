"""Hospital sign-in through allauth's OpenID Connect provider, one app per clinic.

Why apps built here rather than allauth's SocialApp rows or settings: a clinic admin configures
the clinic's provider in the portal (accounts.ClinicSignOn), its client secret must be stored
encrypted (SocialApp keeps it in plain text) or come from the environment, and each app must
stay tied to its clinic. allauth asks its adapter for apps (`list_apps`); this adapter answers
with one unsaved SocialApp per enabled clinic, provider id `clinic-<clinic id>`, so its URLs are
/accounts/oidc/clinic-<id>/login/ and .../login/callback/ (the redirect URI the hospital
registers). Nothing of allauth's own sign-up or account linking is used: no SocialAccount rows,
no look-up by address outside the provider's clinic. After the provider's answer,
`pre_social_login` hands the claims to accounts.services.sign_on, which names the account or
refuses; a refusal and every provider error is audited and shown in plain words.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import jwt
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.mfa.stages import AuthenticateStage
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp, SocialLogin
from allauth.socialaccount.providers.base import AuthError, AuthProcess
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.openid_connect import views as oidc_views
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from requests import RequestException

from accounts.audit import audit_record
from accounts.selectors.sign_on import sign_on_for_provider, sign_ons_enabled
from accounts.services.sign_on import SignOnRefused, client_secret_for, sso_sign_in_resolve
from accounts.signals import SSO_REQUEST_ATTRIBUTE

PROVIDER = "openid_connect"


def _app(sign_on) -> SocialApp:
    return SocialApp(
        provider=PROVIDER,
        provider_id=sign_on.provider_id,
        name=sign_on.display_name,
        client_id=sign_on.client_id,
        secret=client_secret_for(sign_on),
        settings={
            "server_url": sign_on.issuer,
            "oauth_pkce_enabled": True,
            "fetch_userinfo": True,
        },
    )


class ClinicSocialAccountAdapter(DefaultSocialAccountAdapter):
    def list_apps(self, request, provider=None, client_id=None) -> list[SocialApp]:
        apps = [_app(sign_on) for sign_on in sign_ons_enabled()]
        if provider:
            apps = [app for app in apps if provider in (app.provider, app.provider_id)]
        if client_id:
            apps = [app for app in apps if app.client_id == client_id]
        return apps

    def is_open_for_signup(self, request, sociallogin) -> bool:
        return False  # accounts.services.sign_on creates accounts, when a clinic allows it

    def authenticate_by_email(self, sociallogin):
        return None  # never allauth's look-up across clinics: sso_sign_in_resolve's own

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        provider_id = sociallogin.account.provider
        sign_on = sign_on_for_provider(provider_id)
        extra = sociallogin.account.extra_data or {}
        id_token, userinfo = extra.get("id_token") or {}, extra.get("userinfo") or {}
        try:
            if sign_on is None:
                raise SignOnRefused("disabled", "This hospital sign-in is switched off.")
            if sociallogin.state.get("process") == AuthProcess.CONNECT:
                raise SignOnRefused(
                    "connect",
                    "Hospital sign-in is not linked to accounts by hand: sign out, then sign in "
                    "with your hospital.",
                )
            if not id_token:
                raise SignOnRefused(
                    "no_id_token", "The hospital's identity provider sent no ID token."
                )
            result = sso_sign_in_resolve(
                sign_on=sign_on, id_token=id_token, userinfo=userinfo, request=request
            )
        except SignOnRefused as refusal:
            audit_record(
                action="sso.refused",
                request=request,
                provider=provider_id,
                clinic=sign_on.clinic_id if sign_on else None,
                reason=refusal.reason,
                sub=str(id_token.get("sub", "")),
                **refusal.detail,
            )
            page = _page(request, "Sign-in refused", refusal.message, 403)
            raise ImmediateHttpResponse(page) from None
        sociallogin.user = result.user
        setattr(
            request,
            SSO_REQUEST_ATTRIBUTE,
            {
                "provider": provider_id,
                "mfa_by_provider": result.mfa_by_provider,
                "amr": result.amr,
                "created": result.created,
                "role_mapped": result.role_mapped,
            },
        )

    def on_authentication_error(
        self, request, provider, error=None, exception=None, extra_context=None
    ) -> None:
        provider_id = getattr(getattr(provider, "app", None), "provider_id", "")
        raise ImmediateHttpResponse(
            provider_error_response(request, provider_id, error=error, exception=exception)
        )


def provider_error_response(
    request: HttpRequest, provider_id: str, *, error=None, exception=None
) -> HttpResponse:
    """Audit a failed exchange with the provider and answer it in plain words."""
    kind, message, detail = describe_provider_error(error, exception)
    audit_record(action="sso.error", request=request, provider=provider_id, kind=kind, **detail)
    status = 502 if kind in ("unreachable", "provider_answer") else 401
    return _page(request, "Hospital sign-in failed", message, status)


def _page(request: HttpRequest, title: str, message: str, status: int) -> HttpResponse:
    return render(
        request,
        "account/sso_refused.html",
        {"title": title, "message": message},
        status=status,
    )


def _root_cause(exception: BaseException | None) -> BaseException | None:
    seen = exception
    while seen is not None and seen.__cause__ is not None:
        seen = seen.__cause__
    return seen


def describe_provider_error(error, exception) -> tuple[str, str, dict[str, Any]]:
    """(kind for the audit trail, a sentence for the person, detail) for allauth's error."""
    cause = _root_cause(exception)
    text = str(exception or "")
    if error == AuthError.CANCELLED:
        return "cancelled", "You cancelled the sign-in at your hospital.", {}
    if isinstance(cause, RequestException):
        return (
            "unreachable",
            "The portal could not reach your hospital's identity provider; try again in a few "
            "minutes, and tell your IT department if it persists.",
            {"error": type(cause).__name__},
        )
    if isinstance(cause, jwt.ExpiredSignatureError | jwt.ImmatureSignatureError):
        return (
            "clock_skew",
            "The hospital's identity provider sent a token that is already expired or not yet "
            "valid: its clock and the portal's differ. Ask your IT department to set the "
            "provider's clock (NTP).",
            {"error": str(cause)},
        )
    if isinstance(exception, OAuth2Error) and "Error retrieving access token" in text:
        body = text.partition(":")[2].strip()
        if "invalid_client" in body:
            return (
                "wrong_client_secret",
                "Your hospital's identity provider refused the portal's client credentials "
                "(wrong client ID or secret). Your clinic's administrator must enter the "
                "secret the hospital issued for the portal.",
                {"answer": body[:300]},
            )
        return (
            "provider_answer",
            "Your hospital's identity provider refused to complete the sign-in; try again, and "
            "tell your IT department if it persists.",
            {"answer": body[:300]},
        )
    if isinstance(cause, jwt.PyJWTError):
        return (
            "invalid_token",
            "The hospital's identity provider sent an ID token the portal cannot accept "
            "(wrong issuer, audience or signature). Tell your IT department.",
            {"error": str(cause)},
        )
    if exception is None:
        # No state (the sign-in was started elsewhere or too long ago) or an error answer.
        return (
            "interrupted",
            "The sign-in with your hospital did not complete (it may have taken too long, or "
            "was started in another tab). Start again from the portal's log-in page.",
            {"error": str(error or "")},
        )
    return (
        "error",
        "Signing in with your hospital failed; try again, and tell your IT department if it "
        "persists.",
        {"error": json.dumps(text)[:300]},
    )


class ProviderAwareMFAStage(AuthenticateStage):
    """allauth.mfa's code prompt after signing in, skipped when the clinic's provider already
    did the second factor (accounts.services.sign_on.SignIn.mfa_by_provider)."""

    def _should_handle(self, request: HttpRequest) -> bool:
        sso = getattr(request, SSO_REQUEST_ATTRIBUTE, None)
        if sso and sso.get("mfa_by_provider"):
            return False
        return super()._should_handle(request)


def oidc_login(request: HttpRequest, provider_id: str) -> HttpResponse:
    """allauth's openid_connect log-in view, answering "provider unreachable" in plain words
    (allauth lets the discovery request's failure become a server error). Mounted at allauth's
    own path, before allauth's URLs.

    Its "continue to your hospital" form is submitted to this server, which redirects to the
    provider; browsers apply the page's CSP `form-action` to that redirect too, so this page's
    policy also names the provider's origin (and only this page's)."""
    try:
        response = oidc_views.login(request, provider_id)
    except RequestException as error:
        return provider_error_response(request, provider_id, exception=error)
    sign_on = sign_on_for_provider(provider_id)
    policy = getattr(settings, "CONTENT_SECURITY_POLICY", "")
    if sign_on is not None and policy and "form-action 'self'" in policy:
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(sign_on.issuer))
        response["Content-Security-Policy"] = policy.replace(
            "form-action 'self'", f"form-action 'self' {origin}"
        )
    return response
