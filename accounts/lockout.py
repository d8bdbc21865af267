"""Log-in lock-out: per account, with a much looser throttle per client address.

allauth counts failed log-ins (`ACCOUNT_RATE_LIMITS["login_failed"]`, settings) in the shared
cache: per account (the address typed, lower-cased, the account's one address) and per client
address (melanoma_portal.client_address, which trusts only the configured proxies). Locking an
address after as many failures as an account lets one person lock out everyone behind the same
proxy or clinic network, so the address's limit is ten times the account's.

This module names the counters, says in plain words when the next try is allowed, and lets a
clinic admin clear an account's counters (accounts.services.users.user_unlock).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from allauth.core.internal import ratelimit
from django.core.cache import cache
from django.http import HttpRequest

APP = "allauth.account"
ACTION = "login_failed"


def account_key(email: str) -> str:
    """The per-account counter's key: the same whichever host name the portal was reached by
    (allauth's own key includes it), so a clinic admin can clear it without the request."""
    return f"account:{email.strip().lower()}"


def mfa_key(user_pk: int) -> str:
    """allauth.mfa's counter of wrong authenticator codes for one account."""
    return f"mfa-auth-user-{user_pk}"


@dataclass(frozen=True)
class Refusal:
    per: str  # "key" (this account) or "ip" (this client address)
    wait_s: float

    @property
    def message(self) -> str:
        minutes = max(1, math.ceil(self.wait_s / 60))
        when = f"try again in {minutes} minute{'s' if minutes != 1 else ''}"
        if self.per == "ip":
            return f"Too many failed sign-ins from your network address; {when}."
        return f"Too many failed sign-ins for this account; {when}."


def _waits(request: HttpRequest | None, key: str, per: tuple[str, ...]) -> list[Refusal]:
    now = time.time()
    refusals = []
    for rate in ratelimit.get_rates(app=APP, action=ACTION):
        if rate.per not in per:
            continue
        cache_key = ratelimit.get_cache_key(request, app=APP, action=ACTION, rate=rate, key=key)
        recent = [at for at in cache.get(cache_key, []) if at > now - rate.duration]
        if len(recent) >= rate.amount:
            refusals.append(Refusal(rate.per, min(recent) + rate.duration - now))
    return refusals


def refusal(request: HttpRequest, key: str) -> Refusal:
    """Why a log-in the rate limit refused was refused: the account's lock first (the one a
    person can do something about: ask their clinic admin), else the address's throttle."""
    refusals = _waits(request, key, ("key", "ip"))
    for per in ("key", "ip"):
        matching = [r for r in refusals if r.per == per]
        if matching:
            return max(matching, key=lambda r: r.wait_s)
    # The counters moved on between the refusal and this look (a window just expired).
    return Refusal("key", 60)


def locked_for(email: str) -> float | None:
    """Seconds until the account can try its password again, or None if it is not locked."""
    waits = _waits(None, account_key(email), ("key",))
    return max((r.wait_s for r in waits), default=None)


def clear_account(*, email: str, user_pk: int) -> None:
    """Forget an account's failed password and authenticator-code counters (not those of any
    client address: a clinic admin unlocks a person, not a network)."""
    for key in (account_key(email), mfa_key(user_pk)):
        for rate in ratelimit.get_rates(app=APP, action=ACTION):
            if rate.per == "key":
                cache.delete(
                    ratelimit.get_cache_key(None, app=APP, action=ACTION, rate=rate, key=key)
                )
