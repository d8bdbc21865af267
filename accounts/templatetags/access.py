"""`may_open`: whether a user's role lets them open a URL, read from the view's own
`allowed_roles` (accounts.decorators.clinic_role_required), so a page shows a link only to
those its target admits, and the rule is written once, on the view.

    {% load access %}{% url 'patient_rights:erase' patient.pk as erase_url %}
    {% if erase_url|may_open:user %}<a href="{{ erase_url }}">Erase</a>{% endif %}
"""

from __future__ import annotations

from django import template
from django.urls import Resolver404, resolve

from accounts.permissions import is_clinic_member

register = template.Library()


@register.filter
def may_open(url: str, user) -> bool:
    try:
        view = resolve(url).func
    except Resolver404:
        return False
    roles = getattr(view, "allowed_roles", None)
    return roles is not None and is_clinic_member(user) and user.role in roles
