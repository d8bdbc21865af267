"""Served templates stay within the Content-Security-Policy: no inline styles or scripts.

The CSP (style-src 'self'; script-src 'self') makes a browser ignore inline code silently, so
a page using it looks fine in a test client and broken to a doctor. The PDF template is exempt:
WeasyPrint renders it on the server and no browser ever applies the policy to it.
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


@pytest.mark.parametrize("name", served_templates())
def test_template_comments_do_not_span_lines(name):
    """Django's {# #} comment ends at the line's end: one that spans lines is shown as text."""
    text = (TEMPLATES / name).read_text()

    assert not re.search(r"\{#(?:(?!#\}).)*\n", text), f"{name}: use {{% comment %}} for long notes"
