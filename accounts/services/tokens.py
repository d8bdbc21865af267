"""Per-user API tokens for the mobile app and EHR integrations, issued and revoked by a clinic
admin (DRF's authtoken: one token per user; issuing again replaces the old one).

Tokens are never self-service: an admin decides which accounts a device or system may act as,
and revoking (or deactivating the account, which TokenAuthentication refuses) cuts it off at
once. Every issue and revoke is an audit event.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from accounts.audit import audit_record
from accounts.models import Role, User
from accounts.permissions import require_role
from accounts.selectors.users import clinic_user_get, clinic_user_list


@dataclass(frozen=True)
class TokenRow:
    account: User
    issued_at: timezone.datetime | None

    @property
    def has_token(self) -> bool:
        return self.issued_at is not None


def api_token_list(*, user: User) -> list[TokenRow]:
    """The admin's clinic's accounts with when each one's token was issued (None: no token).
    The key itself is shown only once, when issued."""
    require_role(user, Role.ADMIN)
    issued = dict(
        Token.objects.filter(user__clinic_id=user.clinic_id).values_list("user_id", "created")
    )
    return [TokenRow(account, issued.get(account.pk)) for account in clinic_user_list(user=user)]


def api_token_issue(*, actor: User, user_id: int, request=None) -> Token:
    """Issue a new token for an active account of the admin's clinic, replacing any old one."""
    require_role(actor, Role.ADMIN)
    account = clinic_user_get(user=actor, user_id=user_id)
    if not account.is_active:
        raise ValidationError("This account is deactivated; reactivate it before issuing a token.")
    with transaction.atomic():
        replaced = Token.objects.filter(user=account).delete()[0] > 0
        token = Token.objects.create(user=account)
        audit_record(
            action="api_token.issue",
            user=actor,
            request=request,
            obj=account,
            replaced=replaced,
        )
    return token


def api_token_revoke(*, actor: User, user_id: int, request=None) -> bool:
    """Revoke an account's token; False if it had none. Requests with it get 401 at once."""
    require_role(actor, Role.ADMIN)
    account = clinic_user_get(user=actor, user_id=user_id)
    with transaction.atomic():
        revoked = Token.objects.filter(user=account).delete()[0] > 0
        if revoked:
            audit_record(action="api_token.revoke", user=actor, request=request, obj=account)
    return revoked
