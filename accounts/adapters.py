"""allauth, adapted to the portal: no open sign-up, lock-out per account with a message that says
when to try again, and the client address the trusted proxies report."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.internal import ratelimit
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest

from accounts import lockout
from accounts.audit import audit_record
from accounts.models import User
from accounts.selectors.sign_on import local_passwords_disabled_for
from melanoma_portal.client_address import client_ip

SSO_ONLY = (
    "Your clinic signs in through its hospital's identity provider: use the button with your "
    "hospital's name below."
)


class ClinicAccountAdapter(DefaultAccountAdapter):
    """No open sign-up: a clinic admin creates every account. A clinic that switched local
    passwords off signs in only through its identity provider (accounts.sso)."""

    error_messages = {
        **DefaultAccountAdapter.error_messages,
        # allauth.mfa's wrong-code limit says this; the password form says when (below).
        "too_many_login_attempts": (
            "Too many failed sign-ins for this account; try again later, or ask your clinic's "
            "administrator to unlock it."
        ),
    }

    def is_open_for_signup(self, request) -> bool:
        return False

    def get_client_ip(self, request: HttpRequest) -> str:
        ip = client_ip(request)
        if not ip:
            raise PermissionDenied("Unable to determine the client address.")
        return ip

    def _get_login_attempts_cache_key(self, request: HttpRequest, **credentials: Any) -> str:
        # allauth keys the account's counter by host name and address; the portal by address
        # alone, so accounts.lockout can name (and a clinic admin clear) it without a request.
        return lockout.account_key(credentials.get("email") or credentials.get("username") or "")

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        """allauth's, with the refusal saying whose limit it is and when to try again, and
        recorded: the lock-out refuses before the password is checked, so Django's
        user_login_failed (accounts.signals) never hears of the attempt."""
        key = self._get_login_attempts_cache_key(request, **credentials)
        self._login_failed_rl_usage = ratelimit.consume(
            request, app=lockout.APP, action=lockout.ACTION, key=key
        )
        if not self._login_failed_rl_usage:
            refusal = lockout.refusal(request, key)
            identifier = str(credentials.get("email") or credentials.get("username") or "")[:254]
            user = User.objects.filter(email__iexact=identifier).first() if identifier else None
            audit_record(
                action="login.locked_out",
                user=user,
                request=request,
                email=identifier,
                locked=refusal.per,  # "key": this account; "ip": this client address
            )
            raise ValidationError(refusal.message)

    def authenticate(self, request: HttpRequest, **credentials: Any):
        """allauth's; a correct password of a clinic whose local passwords are off is refused,
        saying where to sign in (only someone who knew the password learns it)."""
        user = super().authenticate(request, **credentials)
        if user is not None and local_passwords_disabled_for(user):
            audit_record(action="login.refused", user=user, request=request, reason="sso_only")
            raise ValidationError(SSO_ONLY)
        return user

    def get_login_stages(self) -> list[str]:
        """allauth's, with its authenticator-code stage skipped after a sign-in whose second
        factor the clinic's identity provider did (accounts.sso.ProviderAwareMFAStage)."""
        return [
            "accounts.sso.ProviderAwareMFAStage"
            if stage == "allauth.mfa.stages.AuthenticateStage"
            else stage
            for stage in super().get_login_stages()
        ]
