"""Builders for the lesion-centric tests: a lesion's images and results at chosen times."""

from __future__ import annotations

import datetime

from django.utils import timezone

from diagnosis.models import Analysis, DermoscopicImage
from tests import factories

# p(mel), triage reason and probabilities for a result of each level (a v2 model's).
LEVELS = {
    "urgent": (0.71, "Melanoma 71%", {"mel": 0.71, "nv": 0.17, "bkl": 0.05, "bcc": 0.03}),
    "soon": (0.08, "BCC 62%", {"bcc": 0.62, "nv": 0.2, "mel": 0.08, "bkl": 0.1}),
    "routine": (0.03, "", {"nv": 0.9, "mel": 0.03, "bkl": 0.05, "bcc": 0.02}),
}


def at(days_ago: float, hour: int = 10) -> datetime.datetime:
    """A moment `days_ago` days back at `hour` o'clock local time."""
    day = timezone.localdate() - datetime.timedelta(days=days_ago)
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour, 0)))


def result(lesion, level: str = "routine", *, when: datetime.datetime | None = None, **extra):
    """A finished result of `level` for a new image of `lesion` uploaded `when`."""
    p_mel, reason, probs = LEVELS[level]
    full = {code: 0.0 for code in ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")} | probs
    top = max(full, key=full.get)
    analysis = factories.DoneAnalysisFactory(
        image=factories.DermoscopicImageFactory(
            lesion=lesion,
            thumbnail=factories.ContentFile(factories.jpeg_bytes((64, 48)), name="t.jpg"),
        ),
        probabilities=full,
        top_class=top,
        melanoma_probability=p_mel,
        risk_tier={"urgent": "high", "soon": "moderate", "routine": "low"}[level],
        triage_level=level,
        triage_reason=reason,
        model_version="ham10000-test-v2",
        **extra,
    )
    if when is not None:
        DermoscopicImage.objects.filter(pk=analysis.image_id).update(uploaded_at=when)
        Analysis.objects.filter(pk=analysis.pk).update(queued_at=when)
        analysis.refresh_from_db()
        analysis.image.refresh_from_db()
    return analysis


def sign(analysis, doctor, **fields):
    """A signed review of `analysis` by `doctor`."""
    return factories.ReviewFactory(
        analysis=analysis,
        author=doctor,
        signed_at=timezone.now(),
        signed_by=doctor,
        signed_by_name=doctor.get_full_name(),
        **fields,
    )
