"""The address a request came from, the one answer for lock-out, throttling and the audit trail.

`X-Forwarded-For` is written by whoever sends the request, so only the entries the portal's own
proxies appended are believed: with `ALLAUTH_TRUSTED_PROXY_COUNT` = N (allauth's setting, read
from the environment in settings), the client is the N-th entry from the right, the address the
outermost trusted proxy saw. With N = 0 (no proxy) the header is ignored and the address is the
connection's own (`REMOTE_ADDR`). Whatever a client puts in front of those entries is ignored.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def trusted_proxy_count() -> int:
    return int(getattr(settings, "ALLAUTH_TRUSTED_PROXY_COUNT", 0) or 0)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as the trusted proxies report it, or None if there is none valid.

    A header with fewer entries than trusted proxies (a request that reached an inner proxy
    directly) was written by trusted proxies alone, so its first entry is believed: this never
    fails a request the way allauth's own helper does (ImproperlyConfigured).
    """
    count = trusted_proxy_count()
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if count > 0 and forwarded:
        entries = [entry.strip() for entry in forwarded.split(",")]
        candidate = entries[-min(count, len(entries))]
    else:
        candidate = request.META.get("REMOTE_ADDR", "")
    return _valid(candidate)


def _valid(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None
