"""The portal's own templates carry no inline styles or scripts; the policy says why it still
admits inline styles.

The CSP's script-src 'self' makes a browser ignore inline scripts silently, so a page using one
looks fine in a test client and broken to a doctor. Its style-src also admits 'unsafe-inline',
only because pages the portal serves from other packages need it (see
test_inline_styles_are_admitted_only_for_the_pages_of_other_packages); our own templates keep
to the strict rule so that the exception can go once those packages no longer need it. The PDF
template is exempt: WeasyPrint renders it on the server and no browser applies the policy.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
RENDERED_ON_SERVER_ONLY = {"reports/analysis_report_pdf.html"}

INLINE = {
    "style attribute": re.compile(r"\sstyle\s*=", re.I),
    "<style> block": re.compile(r"<style[\s>]", re.I),
    "inline <script>": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "event-handler attribute": re.compile(r"\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def served_templates() -> list[str]:
    return sorted(
        str(path.relative_to(TEMPLATES))
        for path in TEMPLATES.rglob("*.html")
        if str(path.relative_to(TEMPLATES)) not in RENDERED_ON_SERVER_ONLY
    )


@pytest.mark.parametrize("name", served_templates())
def test_served_template_has_no_inline_code_the_csp_would_block(name):
    text = (TEMPLATES / name).read_text()

    found = [what for what, pattern in INLINE.items() if pattern.search(text)]

    assert not found, f"{name} uses {', '.join(found)}; move it to a file under static/"


# Pages served from other packages whose templates carry inline <style> blocks or style
# attributes: with style-src 'self' alone they would render unstyled or show hidden forms.
THIRD_PARTY_INLINE_STYLES = {
    "django.contrib.admin": "admin/change_list.html",
    "drf_spectacular": "drf_spectacular/swagger_ui.html",
    "allauth": "account/email_change.html",
}


def test_inline_styles_are_admitted_only_for_the_pages_of_other_packages(settings):
    """'unsafe-inline' stays in style-src while these packages need it, never in script-src."""
    import importlib

    need_it = []
    for package, template in THIRD_PARTY_INLINE_STYLES.items():
        root = Path(importlib.import_module(package).__file__).parent / "templates"
        text = (root / template).read_text()
        if INLINE["style attribute"].search(text) or INLINE["<style> block"].search(text):
            need_it.append(package)
    directives = dict(
        part.strip().split(" ", 1) for part in settings.CONTENT_SECURITY_POLICY.split(";")
    )

    assert "'unsafe-inline'" not in directives["script-src"]
    if need_it:
        assert "'unsafe-inline'" in directives["style-src"], need_it
    else:
        pytest.fail("no package needs inline styles any more: drop 'unsafe-inline' from style-src")


@pytest.mark.parametrize("name", served_templates())
def test_template_comments_do_not_span_lines(name):
    """Django's {# #} comment ends at the line's end: one that spans lines is shown as text."""
    text = (TEMPLATES / name).read_text()

    assert not re.search(r"\{#(?:(?!#\}).)*\n", text), f"{name}: use {{% comment %}} for long notes"
