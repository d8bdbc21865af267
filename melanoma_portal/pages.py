"""Pages of the project itself rather than of an app: the server-error page and the favicon.

Django renders 403.html and 404.html with the request, so they show the portal's layout and
menu; its default 500 handler renders without one (the error may lie in what a request
context needs). `server_error` tries the layout first and falls back to a page that needs
nothing, so a failure never hides behind a blank screen or a second error.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.template import loader
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

FALLBACK_500 = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>Something went wrong · Melanoma Portal</title></head><body>"
    "<h1>Something went wrong</h1><p>The portal could not finish this request; nothing you "
    'saved before is lost. Try again in a moment, or <a href="/">go back to the '
    "dashboard</a>. If it happens again, tell your administrator when it happened.</p>"
    "</body></html>"
)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: the portal's layout with its menu when it can be drawn, else a plain page."""
    try:
        body = loader.render_to_string("500.html", request=request)
    except Exception:  # the layout itself failed (the database is down, say)
        logger.exception("the 500 page could not be drawn in the layout")
        body = FALLBACK_500
    return HttpResponseServerError(body)


@require_GET
@cache_control(max_age=7 * 24 * 3600, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers ask for on pages that name no icon (the Django admin's)."""
    icon = settings.BASE_DIR / "static" / "favicon.ico"
    return HttpResponse(icon.read_bytes(), content_type="image/x-icon")
