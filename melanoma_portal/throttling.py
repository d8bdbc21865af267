"""The REST API's throttles, keyed by the client address that melanoma_portal.client_address
trusts (DRF's own reading of `X-Forwarded-For` believes whatever a client writes there, so a
caller could name a fresh address on every request and never be throttled).

`refused_authentication_throttled` counts every request the API refuses for want of valid
credentials against the caller's address, at the anonymous rate: DRF checks throttles only
after authentication and permissions, so without it a token could be guessed at full speed,
each guess answered 401 and none of them counted.
"""

from __future__ import annotations

from rest_framework import throttling
from rest_framework.request import Request

from melanoma_portal.client_address import client_ip


class _ByTrustedClientAddress:
    def get_ident(self, request: Request) -> str:
        return client_ip(request) or "unknown"


class UserRateThrottle(_ByTrustedClientAddress, throttling.UserRateThrottle):
    """Per signed-in user (DRF's), per trusted client address for anonymous callers."""


class UploadRateThrottle(UserRateThrottle):
    """Image uploads per user (the `upload` rate), in place of the `user` rate: a backlog
    upload is sized on its own, and status reads never use it up."""

    scope = "upload"


class StatusRateThrottle(UserRateThrottle):
    """Status reads of an analysis per user (the `status` rate), in place of the `user` rate:
    an integration waiting for many results at once polls without touching other budgets."""

    scope = "status"


class AnonRateThrottle(_ByTrustedClientAddress, throttling.AnonRateThrottle):
    """Per trusted client address, for callers that are not signed in (DRF's `anon` rate)."""


def refused_authentication_throttled(request: Request, view) -> float | None:
    """Count one refused authentication against the caller's address; when the address is
    past the `anon` rate, the seconds to wait (the answer becomes 429 instead of 401)."""
    throttle = AnonRateThrottle()
    if throttle.rate is None or throttle.allow_request(request, view):
        return None
    return throttle.wait() or 1.0
