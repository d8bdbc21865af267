"""Per-account API tokens for the mobile app and EHR integrations, issued and revoked by a
clinic admin (django-rest-knox's hashed tokens, accounts.ApiToken: one per account; issuing
again replaces the old one).

Tokens are never self-service: an admin decides which accounts a device or system may act as
and for how long (API_TOKEN_DEFAULT_DAYS unless they choose, at most API_TOKEN_MAX_DAYS), and
revoking (or deactivating the account) cuts it off at once. An account whose role requires
two-factor authentication gets a token only once it has an authenticator: a token must not be
a way round the rule its browser session obeys. Every issue and revoke is an audit event.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record, audited_write
from accounts.mfa import has_authenticator, mfa_required_for
from accounts.models import ApiToken, Role, User
from accounts.permissions import require_role
from accounts.selectors.users import clinic_user_get, clinic_user_list


@dataclass(frozen=True)
class TokenRow:
    account: User
    token: ApiToken | None

    @property
    def has_token(self) -> bool:
        return self.token is not None

    @property
    def expired(self) -> bool:
        return self.token is not None and self.token.expiry <= timezone.now()


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    key: str  # shown to the admin this once; only its digest is stored

    @property
    def user(self) -> User:
        return self.token.user


def api_token_list(*, user: User) -> list[TokenRow]:
    """The admin's clinic's accounts with each one's token (None: no token): when it was
    issued, when it expires, when it was last used. The key itself is never shown again."""
    require_role(user, Role.ADMIN)
    tokens = {
        token.user_id: token
        for token in ApiToken.objects.filter(user__clinic_id=user.clinic_id).order_by("created")
    }
    return [TokenRow(account, tokens.get(account.pk)) for account in clinic_user_list(user=user)]


def token_days_allowed() -> tuple[int, int, int]:
    """(fewest, default, most) days a token may be valid for."""
    return 1, settings.API_TOKEN_DEFAULT_DAYS, settings.API_TOKEN_MAX_DAYS


@audited_write("api_token.issue")
def api_token_issue(
    *, actor: User, user_id: int, days: int | None = None, request=None
) -> IssuedToken:
    """Issue a new token for an active account of the admin's clinic, valid for `days`
    (the default when None), replacing any old one."""
    require_role(actor, Role.ADMIN)
    account = clinic_user_get(user=actor, user_id=user_id)
    fewest, default, most = token_days_allowed()
    days = default if days is None else days
    if not fewest <= days <= most:
        raise ValidationError({"days": f"Choose between {fewest} and {most} days."})
    if not account.is_active:
        raise ValidationError("This account is deactivated; reactivate it before issuing a token.")
    if mfa_required_for(account) and not has_authenticator(account):
        raise ValidationError(
            f"{account.email} must set up two-factor authentication before a token can be "
            "issued: their role requires it."
        )
    with transaction.atomic():
        replaced = ApiToken.objects.filter(user=account).delete()[0] > 0
        token, key = ApiToken.objects.create(
            user=account, expiry=datetime.timedelta(days=days), issued_by=actor
        )
        audit_record(
            action="api_token.issue",
            user=actor,
            request=request,
            obj=account,
            replaced=replaced,
            days=days,
            expires=token.expiry.isoformat(),
        )
    return IssuedToken(token, key)


@audited_write("api_token.revoke")
def api_token_revoke(*, actor: User, user_id: int, request=None) -> bool:
    """Revoke an account's token; False if it had none. Requests with it get 401 at once."""
    require_role(actor, Role.ADMIN)
    account = clinic_user_get(user=actor, user_id=user_id)
    with transaction.atomic():
        revoked = ApiToken.objects.filter(user=account).delete()[0] > 0
        if revoked:
            audit_record(action="api_token.revoke", user=actor, request=request, obj=account)
    return revoked
