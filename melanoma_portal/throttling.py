"""The REST API's throttles, keyed by the client address that melanoma_portal.client_address
trusts (DRF's own reading of `X-Forwarded-For` believes whatever a client writes there, so a
caller could name a fresh address on every request and never be throttled).
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


class AnonRateThrottle(_ByTrustedClientAddress, throttling.AnonRateThrottle):
    """Per trusted client address, for callers that are not signed in (DRF's `anon` rate)."""
