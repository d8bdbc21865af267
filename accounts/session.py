"""The idle-timeout clock a page asks (static/js/session_timeout.js): how long until this
session is logged out for inactivity, and, on "Stay signed in", the clock started again.

GET is a background request (it does not count as activity; accounts.middleware); POST is the
person pressing the button, with the page's CSRF token. Under /accounts/ with allauth's pages:
it answers any signed-in account, a superuser's too, and shows no clinic data.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts.middleware import idle_seconds_left, mark_active


def warn_before_s() -> int:
    """How long before the idle log-out a page warns: a minute, or half a shorter timeout."""
    return int(min(settings.SESSION_IDLE_WARNING_S, settings.SESSION_IDLE_TIMEOUT_S // 2))


@never_cache
@require_http_methods(["GET", "POST"])
def session_clock(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"signed_in": False, "idle_left_s": 0}, status=401)
    if request.method == "POST":
        mark_active(request)
    return JsonResponse(
        {
            "signed_in": True,
            "idle_left_s": round(idle_seconds_left(request), 1),
            "warn_before_s": warn_before_s(),
        }
    )
