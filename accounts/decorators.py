"""Who may enter a view: one decorator, so every page answers an outsider the same way.

Anonymous visitors are sent to the log-in page; a signed-in person outside a clinic, or with a
role the view does not admit, gets 403. Records of another clinic are the selectors' business:
they raise 404, so a guessed id reveals nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse

from accounts.permissions import CLINICAL_ROLES, require_role


def clinic_role_required(*roles: str) -> Callable:
    """Admit clinic members whose role is one of `roles` (default: every clinical role).

    The allowed roles are kept on the view as `allowed_roles`, so a test can build the
    permission matrix from the URL configuration instead of from a hand-kept list.
    """
    allowed = tuple(roles) or tuple(CLINICAL_ROLES)

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            require_role(request.user, *allowed)
            return view(request, *args, **kwargs)

        wrapper.allowed_roles = allowed  # type: ignore[attr-defined]
        return wrapper

    return decorator
