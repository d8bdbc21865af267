"""Template filters and tags for showing classifier output in the clinic's words; the words
themselves live in diagnosis.presentation."""

from __future__ import annotations

import functools

from django import template

from diagnosis import presentation

register = template.Library()


@register.filter
def class_name(code: str) -> str:
    """'mel' -> 'Melanoma'; screens show full names, code keeps the field's short codes."""
    return presentation.class_name(code)


@register.filter
def percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


@register.simple_tag
def disclaimer() -> str:
    """The disclaimer every shown result carries (the same words as the PDF, API and FHIR)."""
    return presentation.DISCLAIMER


@register.inclusion_tag("diagnosis/includes/referral_links.html", takes_context=True)
def analysis_referrals(context: template.Context, analysis) -> dict:
    """The referrals an analysis's reviews opened, with whether each is overdue today: one
    widget for the result page and the review page, read through the clinic-scoped selector."""
    from diagnosis.selectors.referral import referrals_for_analysis

    return {"referrals": referrals_for_analysis(user=context["user"], analysis=analysis)}


@register.filter
def triage(analysis) -> presentation.TriageShown | None:
    """The analysis's triage to show (`{% with t=analysis|triage %}`), or None for a result
    without one, which keeps its melanoma risk tier."""
    return presentation.triage_of(analysis)


@register.filter
def gate_refusal(analysis) -> presentation.GateRefusal | None:
    """The image gate's refusal of an analysis that was not analysed, or None."""
    return presentation.refusal_of(analysis)


@register.filter
def override_mark(analysis) -> presentation.Override | None:
    """The outside-validated-use mark of an analysis a doctor overrode, or None."""
    return presentation.override_of(analysis)


@register.simple_tag
def body_map_picker() -> str:
    """The body map drawing inline (static/diagnosis/body-map.svg), so that its regions can be
    clicked and reached with the keyboard (static/js/body_map.js)."""
    from django.utils.safestring import mark_safe

    return mark_safe(_body_map_drawing())  # noqa: S308 - our own static file, written by us


@functools.cache
def _body_map_drawing() -> str:
    from django.contrib.staticfiles import finders

    from diagnosis.body_map import STATIC_PATH

    path = finders.find(STATIC_PATH)
    if path is None:
        raise FileNotFoundError(f"{STATIC_PATH} is missing: run python -m diagnosis.body_map")
    with open(path, encoding="utf-8") as handle:
        return handle.read()


@register.filter
def level_label(level: str) -> str:
    """'urgent' -> 'Urgent'; '' -> 'No result'."""
    return presentation.level_label(level)
