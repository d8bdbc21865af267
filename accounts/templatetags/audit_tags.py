"""`{% load audit_tags %}{% audit_history analysis %}`: the analysis history panel in one line,
shown only to the clinic admins of the analysis's clinic (accounts.selectors.audit)."""

from __future__ import annotations

from django import template

from accounts.selectors.audit import history_for

register = template.Library()


@register.inclusion_tag("accounts/includes/audit_history.html", takes_context=True)
def audit_history(context, obj) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    events = list(history_for(obj, user=user)) if user is not None else []
    return {"events": events}
