"""JWTs for API clients that act for a person (the mobile app): a sign-in gives a short-lived
access token and a refresh token (djangorestframework-simplejwt, settings.SIMPLE_JWT).

- Sign-in needs what the portal's log-in page needs: the password (the same per-account
  lock-out), and a code from the account's authenticator app whenever it has one. An account
  whose role requires two-factor authentication and has no authenticator gets no token, nor
  does an account of a clinic that switched local passwords off (it signs in at its hospital).
- Each sign-in is a family (accounts.RefreshTokenFamily, claim `fam`). A refresh rotates the
  refresh token and blacklists the old one; presenting a blacklisted one again means two
  holders of the same token, one of them not its owner, so the whole family is revoked.
- Deactivation, a password change and a change of role or clinic revoke every family of the
  account (accounts.signals); access tokens stop working at once, not when they expire
  (accounts.authentication.PortalJWTAuthentication checks the family on every request).

Server-to-server integrations keep the clinic admin's knox tokens (accounts.services.tokens).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.mfa.base.forms import BaseAuthenticateForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, Token

from accounts.adapters import SSO_ONLY as SSO_ONLY_PASSWORD
from accounts.audit import audit_record, audited_write
from accounts.mfa import has_authenticator, mfa_required_for
from accounts.models import RefreshTokenFamily, User
from accounts.permissions import is_clinic_member
from accounts.selectors.jwt_tokens import family_get
from accounts.selectors.sign_on import local_passwords_disabled_for

FAMILY_CLAIM = "fam"
REFRESH_PATH = "/api/v1/auth/token/refresh/"

WRONG_CREDENTIALS = "Wrong e-mail address or password."
CODE_NEEDED = (
    "This account uses two-factor authentication: send a current code from your "
    "authenticator app as `code`."
)
MFA_MISSING = (
    "Your role requires two-factor authentication: set up an authenticator app in the portal "
    "(Security settings) before signing in to an app."
)
NOT_A_CLINIC_MEMBER = "Only members of a clinic can use the API."
SSO_ONLY = (
    "Your clinic signs in through its hospital's identity provider; local passwords are "
    "switched off, so an app cannot sign in with one."
)
REUSED = (
    "This refresh token was already used once. Someone else may hold a copy of it, so every "
    "token of this sign-in is now revoked: sign in again."
)


class TokenRefused(Exception):
    """A refused sign-in or refresh, with the sentence the client shows. `status` is the HTTP
    status the API answers (401: sign in again; 403: this account may not)."""

    def __init__(self, message: str, *, status: int = 401, code: str = "not_authenticated"):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class PortalRefreshToken(RefreshToken):
    """simplejwt's refresh token, except that reading one does not refuse a blacklisted token:
    whether it is blacklisted is `jwt_refresh`'s question, because the answer "it was rotated
    already" must revoke its family, not just refuse it. Signature, expiry, type and id are
    checked as before."""

    def verify(self) -> None:
        Token.verify(self)


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    access_expires: datetime.datetime
    refresh_expires: datetime.datetime

    def as_dict(self) -> dict:
        return {
            "access": self.access,
            "refresh": self.refresh,
            "access_expires": self.access_expires.isoformat(),
            "refresh_expires": self.refresh_expires.isoformat(),
            "token_type": "Bearer",
        }


def _expiry(token: Token) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(token["exp"], tz=datetime.UTC)


def _pair(refresh: PortalRefreshToken) -> TokenPair:
    access = refresh.access_token
    return TokenPair(str(access), str(refresh), _expiry(access), _expiry(refresh))


def _new_refresh(user: User, family: RefreshTokenFamily) -> PortalRefreshToken:
    refresh = PortalRefreshToken()
    refresh[api_settings.USER_ID_CLAIM] = getattr(user, api_settings.USER_ID_FIELD)
    refresh[FAMILY_CLAIM] = str(family.pk)
    refresh.outstand()
    return refresh


def _check_second_factor(user: User, code: str) -> str | None:
    """The second factor the sign-in used ('totp', 'recovery_codes') or None when the account
    has none and its role needs none; raises TokenRefused otherwise. Wrong codes count
    against the account's lock-out exactly as on the log-in page (allauth.mfa's form)."""
    if has_authenticator(user):
        if not code:
            raise TokenRefused(CODE_NEEDED, code="mfa_code_required")
        form = BaseAuthenticateForm(data={"code": code}, user=user)
        if not form.is_valid():
            raise TokenRefused(" ".join(form.errors.get("code", ["Incorrect code."])))
        form.authenticator.record_usage()
        return form.authenticator.type
    if mfa_required_for(user):
        raise TokenRefused(MFA_MISSING, status=403, code="mfa_required")
    return None


@audited_write("jwt.issue")
def jwt_issue(*, email: str, password: str, code: str = "", request: HttpRequest) -> TokenPair:
    """Sign an API client in: a new family, its first refresh token and an access token."""
    adapter = get_account_adapter(request)
    try:
        user = adapter.authenticate(request, email=email.strip(), password=password)
    except ValidationError as error:
        if SSO_ONLY_PASSWORD in error.messages:
            raise TokenRefused(SSO_ONLY, status=403, code="sso_only") from None
        # The account or the client address is locked out, as on the log-in page.
        raise TokenRefused(" ".join(error.messages), status=429, code="throttled") from None
    if user is None:
        raise TokenRefused(WRONG_CREDENTIALS)
    if not is_clinic_member(user):
        raise TokenRefused(NOT_A_CLINIC_MEMBER, status=403, code="permission_denied")
    if local_passwords_disabled_for(user):
        raise TokenRefused(SSO_ONLY, status=403, code="sso_only")
    factor = _check_second_factor(user, code)
    with transaction.atomic():
        family = RefreshTokenFamily.objects.create(user=user)
        pair = _pair(_new_refresh(user, family))
        audit_record(
            action="jwt.issue",
            user=user,
            request=request,
            family=str(family.pk),
            second_factor=factor or "",
            refresh_expires=pair.refresh_expires.isoformat(),
        )
    return pair


def _read_refresh(raw: str) -> PortalRefreshToken:
    try:
        return PortalRefreshToken(raw)
    except ExpiredTokenError:
        raise TokenRefused(
            "This refresh token has expired: sign in again.", code="token_expired"
        ) from None
    except TokenError:
        raise TokenRefused(
            "This is not a valid refresh token of this portal: sign in again.",
            code="token_not_valid",
        ) from None


@audited_write("jwt.refresh", "jwt.reuse")
def jwt_refresh(*, refresh: str, request: HttpRequest | None = None) -> TokenPair:
    """A new access token and a new refresh token for a valid, unused refresh token; the old
    one is blacklisted. A blacklisted one revokes its family (audited as `jwt.reuse`) and is
    refused."""
    token = _read_refresh(refresh)
    family_id = token.get(FAMILY_CLAIM)
    reused = False
    with transaction.atomic():
        # One refresh of a family at a time: of two racing with the same token, the second
        # finds it blacklisted.
        family = family_get(family_id, for_update=True)
        if family is None:
            raise TokenRefused(
                "This is not a valid refresh token of this portal: sign in again.",
                code="token_not_valid",
            )
        if family.revoked_at is not None:
            raise TokenRefused(family.ended_message, code="token_revoked")
        user = family.user
        if BlacklistedToken.objects.filter(token__jti=token[api_settings.JTI_CLAIM]).exists():
            _revoke(family, "reuse")
            audit_record(action="jwt.reuse", user=user, request=request, family=str(family.pk))
            reused = True
        else:
            _check_still_allowed(user)
            token.blacklist()
            token.set_jti()
            token.set_exp()
            token.set_iat()
            token.outstand()
            pair = _pair(token)
            audit_record(action="jwt.refresh", user=user, request=request, family=str(family.pk))
    if reused:  # raised after the commit: the revocation must stand
        raise TokenRefused(REUSED, code="token_reused")
    return pair


def _check_still_allowed(user: User) -> None:
    """What a sign-in required must still hold at each refresh."""
    if not user.is_active:
        raise TokenRefused("This account is deactivated.")
    if mfa_required_for(user) and not has_authenticator(user):
        raise TokenRefused(MFA_MISSING, status=403, code="mfa_required")
    if local_passwords_disabled_for(user):
        raise TokenRefused(SSO_ONLY, status=403, code="sso_only")


def _revoke(family: RefreshTokenFamily, reason: str) -> None:
    now = timezone.now()
    RefreshTokenFamily.objects.filter(pk=family.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoked_reason=reason
    )
    family.revoked_at, family.revoked_reason = now, reason


@audited_write("jwt.sign_out")
def jwt_sign_out(*, refresh: str, request: HttpRequest | None = None) -> None:
    """The app signs out: its family ends, access token included."""
    token = _read_refresh(refresh)
    with transaction.atomic():
        family = family_get(token.get(FAMILY_CLAIM), for_update=True)
        if family is None or family.revoked_at is not None:
            raise TokenRefused("This sign-in has already ended.", code="token_revoked")
        _revoke(family, "sign_out")
        audit_record(
            action="jwt.sign_out", user=family.user, request=request, family=str(family.pk)
        )


@audited_write("jwt.revoke")
def jwt_revoke_all(
    *, user: User, reason: str, actor: User | None = None, request: HttpRequest | None = None
) -> int:
    """End every JWT sign-in of `user` (deactivation, password change, change of role):
    their refresh tokens are blacklisted and their access tokens refused from now on. Returns
    how many were live; records one audit event when there were any."""
    if reason not in RefreshTokenFamily.REVOKED_BECAUSE:
        raise ValueError(f"unknown revocation reason {reason!r}")
    if actor is not None and actor.pk != user.pk and not actor.is_superuser:
        if not (is_clinic_member(actor) and actor.clinic_id == user.clinic_id):
            raise PermissionDenied("This account belongs to another clinic.")
    with transaction.atomic():
        revoked = RefreshTokenFamily.objects.filter(user=user, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_reason=reason
        )
        if revoked:
            outstanding = OutstandingToken.objects.filter(
                user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
            )
            BlacklistedToken.objects.bulk_create(
                [BlacklistedToken(token=token) for token in outstanding]
            )
            audit_record(
                action="jwt.revoke",
                user=actor if actor is not None else user,
                request=request,
                obj=user,
                reason=reason,
                sign_ins=revoked,
            )
    return revoked
