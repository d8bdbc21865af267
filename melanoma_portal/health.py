"""/readyz: may this web process take requests, and is the background scheduler alive?

For a load balancer and for monitoring; public, and it says nothing about anyone's data.

- 503 when the database cannot be reached: the process cannot serve a page.
- 200 otherwise, with `"status": "degraded"` and a sentence under `beat` when the stale sweep
  has not run for three of its intervals. A web process serves pages fine without beat, so
  that alone does not take it out of rotation; alert on `status` != "ok".
"""

from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from diagnosis.selectors import sweep_late


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        beat = sweep_late()
    except DatabaseError:
        return JsonResponse(
            {"status": "unavailable", "database": "unreachable", "beat": "unknown"}, status=503
        )
    return JsonResponse(
        {"status": "degraded" if beat else "ok", "database": "ok", "beat": beat or "ok"}
    )
