"""Signing in by e-mail address: the account's own address (User.email) and no other.

allauth's backend also accepts any address in its EmailAddress table, and self-service e-mail
management let anyone attach someone else's address there: staff of one clinic added a doctor
of another clinic's address, then signed in "as" that address with their own password (issue
11). This backend is allauth's (same timing-attack mitigation, same hand-over of deactivated
accounts to allauth's "inactive" page) with the look-up narrowed to User.email.
"""

from __future__ import annotations

from allauth.account.auth_backends import AuthenticationBackend
from django.contrib.auth.base_user import AbstractBaseUser

from accounts.models import User


class AccountEmailBackend(AuthenticationBackend):
    def _authenticate_by_email(self, email: str, password: str) -> AbstractBaseUser | None:
        if not email:
            return None
        # Unique case-insensitively (the database's constraint), so at most one account.
        user = User.objects.filter(email__iexact=email.strip()).first()
        return self._check_password(user, password)
