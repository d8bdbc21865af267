"""API token authentication: django-rest-knox's hashed tokens, with the portal's rules.

A token is refused, each time with a message the client can show, when it has expired, when
its account is deactivated, and when it is one of the plain-text tokens the portal issued
before tokens were stored hashed (issue 11). A token of an account whose role requires
two-factor authentication (settings.MFA_REQUIRED_ROLES) works only while that account has an
authenticator, exactly as the account's browser session does (accounts.mfa): without this a
clinic admin without MFA got 403 with a session and 200 with a token.

Each use is recorded on the token (`last_used_at`, to the minute: one write a minute at most).

Apps that act for a person (the mobile app) send a short-lived JWT instead (`Authorization:
Bearer <access>`, accounts.services.jwt_tokens): `PortalJWTAuthentication` is simplejwt's, with
the same rules (deactivated accounts, MFA) and one more: the token's sign-in (its family) must
not have been revoked, so a revocation takes effect at once, not when the token expires.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from hmac import compare_digest

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.settings import CONSTANTS
from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.tokens import AccessToken

from accounts.mfa import has_authenticator, mfa_required_for
from accounts.models import ApiToken, User
from accounts.selectors.jwt_tokens import family_refusal

LAST_USED_RESOLUTION = timedelta(minutes=1)
# DRF's authtoken keys: 40 hexadecimal characters, and no prefix. Retired, never stored now.
PLAIN_TEXT_KEY = re.compile(r"[0-9a-f]{40}")
RETIRED = (
    "This token was retired when the portal began storing tokens hashed; ask your clinic's "
    "administrator for a new one."
)
INVALID = "Invalid token."
MFA_MISSING = "Two-factor authentication must be set up before using the API."


class ApiTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, token: bytes) -> tuple[User, ApiToken]:
        key = token.decode("utf-8", "replace")
        if PLAIN_TEXT_KEY.fullmatch(key):
            raise exceptions.AuthenticationFailed(RETIRED)
        api_token = _find(key)
        if api_token is None:
            raise exceptions.AuthenticationFailed(INVALID)
        now = timezone.now()
        if api_token.expiry <= now:
            expired = timezone.localtime(api_token.expiry)
            raise exceptions.AuthenticationFailed(
                f"This token expired on {expired:%Y-%m-%d %H:%M}; ask your clinic's "
                "administrator for a new one."
            )
        user = api_token.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed("This account is deactivated.")
        if mfa_required_for(user) and not has_authenticator(user):
            raise exceptions.PermissionDenied(MFA_MISSING)
        if api_token.last_used_at is None or now - api_token.last_used_at >= LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=now)
            api_token.last_used_at = now
        return user, api_token


def _find(key: str) -> ApiToken | None:
    """The token whose digest matches `key`, compared in constant time; the stored prefix only
    narrows the search."""
    digest = hash_token(key)
    candidates = ApiToken.objects.filter(token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH])
    for candidate in candidates.select_related("user"):
        if compare_digest(digest, candidate.digest):
            return candidate
    return None


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI description of the token header, under the name clients already know."""

    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`: a key a clinic admin issued (it starts `mp_`).",
        }


ACCESS_EXPIRED = (
    "This access token expired at {at:%Y-%m-%d %H:%M} UTC; get a new one with your refresh "
    "token (POST /api/v1/auth/token/refresh/)."
)


class PortalJWTAuthentication(JWTAuthentication):
    """`Authorization: Bearer <access token>` from accounts.services.jwt_tokens."""

    def get_validated_token(self, raw_token: bytes) -> AccessToken:
        try:
            return AccessToken(raw_token)
        except ExpiredTokenError:
            # The signature was good (PyJWT checks it before the expiry): the time is genuine.
            expired = AccessToken(raw_token, verify=False)["exp"]
            at = datetime.fromtimestamp(expired, tz=UTC)
            raise exceptions.AuthenticationFailed(ACCESS_EXPIRED.format(at=at)) from None
        except TokenError:
            raise exceptions.AuthenticationFailed(
                "Invalid access token (send the access token, not the refresh token)."
            ) from None

    def get_user(self, validated_token: AccessToken) -> User:
        refusal = family_refusal(validated_token.get("fam"))
        if refusal is not None:
            raise exceptions.AuthenticationFailed(refusal)
        try:
            user = super().get_user(validated_token)
        except exceptions.AuthenticationFailed:
            raise exceptions.AuthenticationFailed("This account is deactivated.") from None
        if mfa_required_for(user) and not has_authenticator(user):
            raise exceptions.PermissionDenied(MFA_MISSING)
        return user


class PortalJWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.PortalJWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "`Bearer <access>`: an access token from POST /api/v1/auth/token/ (e-mail, "
                "password and an authenticator code), valid for minutes; renew it with the "
                "refresh token at /api/v1/auth/token/refresh/, which also rotates the refresh "
                "token. A refresh token presented twice ends the whole sign-in."
            ),
        }
