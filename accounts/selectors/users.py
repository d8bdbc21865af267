"""Reads of clinic accounts, scoped to the clinic admin's own clinic."""

from __future__ import annotations

import math
from dataclasses import dataclass

from allauth.account.models import EmailAddress
from django.db.models import QuerySet
from django.http import Http404

from accounts import lockout
from accounts.models import User
from accounts.permissions import is_clinic_member


def clinic_user_list(*, user: User) -> QuerySet[User]:
    """Everyone in the user's clinic, active first; nobody for someone outside a clinic."""
    if not is_clinic_member(user):
        return User.objects.none()
    return User.objects.filter(clinic_id=user.clinic_id).order_by("-is_active", "email")


def clinic_user_get(*, user: User, user_id: int) -> User:
    """One account of the user's clinic; another clinic's id reads as no such account."""
    try:
        return clinic_user_list(user=user).get(pk=user_id)
    except User.DoesNotExist:
        raise Http404("No such user.") from None


@dataclass(frozen=True)
class UserRow:
    account: User
    # Minutes until the account may try its password again; None when it is not locked out.
    locked_minutes: int | None


def clinic_user_rows(*, user: User) -> list[UserRow]:
    """The clinic's accounts as the admin's user list shows them, with any lock-out."""
    rows = []
    for account in clinic_user_list(user=user):
        wait = lockout.locked_for(account.email)
        rows.append(UserRow(account, None if wait is None else max(1, math.ceil(wait / 60))))
    return rows


def email_in_use(email: str, *, except_user_id: int | None = None) -> bool:
    """Whether any account, of any clinic, has this address (its own or, in data from before
    addresses were single, one attached in allauth's table). Callers must not say which."""
    users = User.objects.filter(email__iexact=email.strip())
    addresses = EmailAddress.objects.filter(email__iexact=email.strip())
    if except_user_id is not None:
        users = users.exclude(pk=except_user_id)
        addresses = addresses.exclude(user_id=except_user_id)
    return users.exists() or addresses.exists()
