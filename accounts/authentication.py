"""API token authentication: django-rest-knox's hashed tokens, with the portal's rules.

A token is refused, each time with a message the client can show, when it has expired, when
its account is deactivated, and when it is one of the plain-text tokens the portal issued
before tokens were stored hashed (issue 11). A token of an account whose role requires
two-factor authentication (settings.MFA_REQUIRED_ROLES) works only while that account has an
authenticator, exactly as the account's browser session does (accounts.mfa): without this a
clinic admin without MFA got 403 with a session and 200 with a token.

Each use is recorded on the token (`last_used_at`, to the minute: one write a minute at most).
"""

from __future__ import annotations

import re
from datetime import timedelta
from hmac import compare_digest

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.settings import CONSTANTS
from rest_framework import exceptions

from accounts.mfa import has_authenticator, mfa_required_for
from accounts.models import ApiToken, User

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
