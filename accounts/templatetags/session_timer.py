"""`{% session_timer %}`: the idle-timeout clock's settings as data attributes of the page's
<body>, read by static/js/session_timeout.js (nothing for an anonymous visitor)."""

from __future__ import annotations

from django import template
from django.conf import settings
from django.urls import reverse
from django.utils.html import format_html

from accounts.middleware import idle_seconds_left
from accounts.session import warn_before_s

register = template.Library()


@register.simple_tag(takes_context=True)
def session_timer(context) -> str:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not hasattr(request, "session"):
        return ""
    return format_html(
        ' data-session-url="{}" data-login-url="{}" data-idle-left-s="{}" '
        'data-warn-before-s="{}" data-user="{}"',
        reverse("session_clock"),
        reverse(settings.LOGIN_URL),
        round(idle_seconds_left(request), 1),
        warn_before_s(),
        user.pk,
    )
