"""The dashboard's "high risk awaiting review" tile opens the list of exactly what it counts."""

from __future__ import annotations

import re

from django.urls import reverse
from django.utils import timezone

from tests import factories


def test_the_high_risk_tile_links_to_exactly_the_analyses_it_counts(client, doctor, staff, lesion):
    def analysis(tier):
        return factories.DoneAnalysisFactory(
            image=factories.DermoscopicImageFactory(lesion=lesion), risk_tier=tier
        )

    waiting = [analysis("high"), analysis("high")]
    analysis("moderate")
    signed = analysis("high")
    factories.ReviewFactory(
        analysis=signed, author=doctor, signed_at=timezone.now(), signed_by_name="Dr A"
    )
    client.force_login(doctor)

    dashboard = client.get(reverse("diagnosis:dashboard")).content.decode()
    href = re.search(r'id="tile-high-risk" href="([^"]+)"', dashboard).group(1)
    count = int(re.search(r'<strong id="count-high-risk"[^>]*>(\d+)</strong>', dashboard).group(1))
    listed = re.findall(r'data-analysis="(\d+)"', client.get(href).content.decode())

    assert count == 2
    assert sorted(map(int, listed)) == sorted(a.pk for a in waiting)
    # Staff may not open the worklist: their tile is not a link.
    client.force_login(staff)
    staff_dashboard = client.get(reverse("diagnosis:dashboard")).content.decode()
    assert re.search(r'id="tile-high-risk">', staff_dashboard)
