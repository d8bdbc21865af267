"""Template filters for showing classifier output in the clinic's words."""

from __future__ import annotations

from django import template

from ml.classes import CLASS_NAMES

register = template.Library()


@register.filter
def class_name(code: str) -> str:
    """'mel' -> 'Melanoma'; screens show full names, code keeps the field's short codes."""
    return CLASS_NAMES.get(code, code)


@register.filter
def percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"
