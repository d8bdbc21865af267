"""Reads of lesions and their images, always scoped to the user's clinic: a lesion's timeline
(every image with its result and review state, by visit), the comparison of two of its
images, and the patient's lesions for the body map."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.permissions import is_clinic_member
from diagnosis import body_map, presentation
from diagnosis.models import (
    Analysis,
    AnalysisStatus,
    DermoscopicImage,
    Histopathology,
    Lesion,
    Review,
)


def lesion_list(*, user: User) -> QuerySet[Lesion]:
    if not is_clinic_member(user):
        return Lesion.objects.none()
    return Lesion.objects.filter(patient__clinic_id=user.clinic_id).select_related("patient")


def lesion_get(*, user: User, lesion_id: int) -> Lesion:
    try:
        return lesion_list(user=user).get(pk=lesion_id)
    except Lesion.DoesNotExist:
        raise Http404("No such lesion.") from None


def image_get(*, user: User, image_id: int) -> DermoscopicImage:
    if not is_clinic_member(user):
        raise Http404("No such image.")
    try:
        return DermoscopicImage.objects.select_related("lesion__patient").get(
            pk=image_id, lesion__patient__clinic_id=user.clinic_id
        )
    except DermoscopicImage.DoesNotExist:
        raise Http404("No such image.") from None


# --- A lesion's timeline ---------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    """One image of a lesion with its analysis (the latest, if it was analysed more than
    once) and what doctors made of it."""

    image: DermoscopicImage
    analysis: Analysis | None
    signed_review: Review | None  # the current signed version
    has_draft: bool
    covering_review: Review | None  # the review of another image that covers this one
    # Earlier results of the same image (a re-analysis with a newer model keeps them), newest
    # first: the lesion page lists them beside the current one.
    earlier: tuple[Analysis, ...] = ()

    @property
    def level(self) -> str:
        """The result's triage ('urgent', 'soon', 'routine'; a result from before triage by
        its risk tier), '' without a finished result."""
        analysis = self.analysis
        if analysis is None or analysis.status != AnalysisStatus.DONE:
            return ""
        return presentation.result_level(analysis.triage_level, analysis.risk_tier)

    @property
    def visit_date(self) -> datetime.date:
        return self.image.visit_date

    @property
    def review_state(self) -> str:
        """The review state in words, e.g. 'Signed by Dr Eva Gruber, 3 Mar 2025'."""
        if self.analysis is None or self.analysis.status != AnalysisStatus.DONE:
            return "No result to review"
        if self.signed_review is not None:
            review = self.signed_review
            return f"Signed by {review.signed_by_name}, {_day(review.signed_at)}"
        if self.covering_review is not None:
            review = self.covering_review
            return (
                f"Covered by {review.signed_by_name}'s review of the visit's latest image, "
                f"{_day(review.signed_at)}"
            )
        if self.has_draft:
            return "Awaiting review (a draft is not signed yet)"
        return "Awaiting review"

    @property
    def awaits_review(self) -> bool:
        return (
            self.analysis is not None
            and self.analysis.status == AnalysisStatus.DONE
            and self.signed_review is None
            and self.covering_review is None
        )


def _day(moment: datetime.datetime) -> str:
    local = timezone.localtime(moment)
    return f"{local.day} {local:%b %Y}"


@dataclass(frozen=True)
class Visit:
    day: datetime.date
    entries: list[TimelineEntry]  # newest first

    @property
    def level(self) -> str:
        return presentation.most_urgent(entry.level for entry in self.entries)


@dataclass
class Timeline:
    lesion: Lesion
    entries: list[TimelineEntry]  # newest first
    histopathology: Histopathology | None

    @property
    def visits(self) -> list[Visit]:
        """The entries grouped by visit (the day the image was uploaded), newest first."""
        days: dict[datetime.date, list[TimelineEntry]] = {}
        for entry in self.entries:
            days.setdefault(entry.visit_date, []).append(entry)
        return [Visit(day=day, entries=items) for day, items in days.items()]

    @property
    def change(self) -> presentation.TriageChange | None:
        """The triage changed between the last two visits with a result (None otherwise)."""
        return presentation.triage_change([(e.visit_date, e.level) for e in self.entries])

    @property
    def results(self) -> list[TimelineEntry]:
        """Entries with a finished result, oldest first (for the chart and the comparison)."""
        return [e for e in reversed(self.entries) if e.level]

    @property
    def awaiting_review(self) -> list[TimelineEntry]:
        return [e for e in self.entries if e.awaits_review]

    @property
    def trend_points(self) -> list[presentation.TrendPoint]:
        return [
            presentation.TrendPoint(
                day=entry.visit_date,
                melanoma_probability=entry.analysis.melanoma_probability or 0.0,
                level=entry.level,
                label=f"Image {entry.image.pk}",
            )
            for entry in self.results
        ]

    def entry_for(self, image_id: int | None) -> TimelineEntry | None:
        return next((e for e in self.entries if e.image.pk == image_id), None)


def _entries(images: list[DermoscopicImage]) -> list[TimelineEntry]:
    entries = []
    for image in images:
        analyses = sorted(image.analyses.all(), key=lambda a: (a.queued_at, a.pk))
        analysis = analyses[-1] if analyses else None
        reviews = list(analysis.reviews.all()) if analysis is not None else []
        signed = [r for r in reviews if r.is_signed]
        entries.append(
            TimelineEntry(
                image=image,
                analysis=analysis,
                signed_review=max(signed, key=lambda r: r.version) if signed else None,
                has_draft=any(not r.is_signed for r in reviews),
                covering_review=analysis.covered_by if analysis is not None else None,
                earlier=tuple(reversed(analyses[:-1])),
            )
        )
    return entries


def lesion_timeline(*, user: User, lesion_id: int) -> Timeline:
    """The lesion (404 outside the user's clinic) with every image, newest first, grouped by
    visit (the day it was uploaded), each with its result and review state; and the lesion's
    histology result. Four queries whatever the number of images."""
    lesion = lesion_get(user=user, lesion_id=lesion_id)
    images = list(
        DermoscopicImage.objects.filter(lesion=lesion)
        .select_related("uploaded_by")
        .prefetch_related(
            Prefetch(
                "analyses",
                queryset=Analysis.objects.select_related("covered_by").prefetch_related(
                    Prefetch("reviews", queryset=Review.objects.order_by("version"))
                ),
            )
        )
        .order_by("-uploaded_at", "-pk")
    )
    return Timeline(
        lesion=lesion,
        entries=_entries(images),
        histopathology=Histopathology.objects.filter(lesion=lesion).first(),
    )


# --- The body map on the patient's page -------------------------------------------------------


@dataclass(frozen=True)
class LesionMark:
    """A lesion of the patient as the body map shows it: where, and coloured by the triage of
    its latest result."""

    lesion: Lesion
    region: body_map.Region | None  # None: a site the map does not draw (unknown)
    level: str  # the latest result's level, '' for none yet
    melanoma_probability: float | None
    change: presentation.TriageChange | None
    number: int = 0  # the lesion's number on the patient's page, 1 for the first recorded
    x: float = 0.0
    y: float = 0.0

    @property
    def url(self) -> str:
        return reverse("diagnosis:lesion_detail", args=[self.lesion.pk])

    @property
    def level_label(self) -> str:
        return presentation.level_label(self.level)

    @property
    def title(self) -> str:
        result = presentation.level_label(self.level)
        if self.melanoma_probability is not None:
            result += f", melanoma {100 * self.melanoma_probability:.0f}%"
        return f"Lesion {self.lesion.pk}: {self.lesion.site_text} ({result})"


# Marks of several lesions in one region are spread around its anchor, in this order.
_SPREAD = [(0, 0), (9, 0), (-9, 0), (0, 9), (0, -9), (9, 9), (-9, -9), (9, -9), (-9, 9)]


def patient_lesion_marks(*, user: User, patient_id: int) -> list[LesionMark]:
    """The patient's lesions for the body map, newest first, numbered 1 for the first recorded:
    each placed on the region it was chosen on (or the first region of its site and side) and
    coloured by its latest result's triage, with whether that changed since the last visit.
    Two queries."""
    lesions = list(
        lesion_list(user=user).filter(patient_id=patient_id).order_by("created_at", "pk")
    )
    rows = (
        Analysis.objects.filter(
            image__lesion__in=lesions,
            status=AnalysisStatus.DONE,
        )
        .order_by("image__uploaded_at", "image_id", "queued_at")
        .values_list(
            "image__lesion_id",
            "image__uploaded_at",
            "triage_level",
            "risk_tier",
            "melanoma_probability",
        )
    )
    by_lesion: dict[int, list[tuple]] = {}
    for lesion_id, uploaded_at, triage_level, risk_tier, p_mel in rows:
        level = presentation.result_level(triage_level, risk_tier)
        by_lesion.setdefault(lesion_id, []).append((timezone.localdate(uploaded_at), level, p_mel))
    marks, used = [], {}
    for number, lesion in enumerate(lesions, start=1):
        region = body_map.REGIONS.get(lesion.body_map_region) or body_map.region_for(
            lesion.anatomic_site, lesion.laterality
        )
        results = by_lesion.get(lesion.pk, [])
        latest = results[-1] if results else None
        x = y = 0.0
        if region is not None:
            n = used.get(region.key, 0)
            used[region.key] = n + 1
            dx, dy = _SPREAD[n % len(_SPREAD)]
            x, y = region.anchor[0] + dx, region.anchor[1] + dy
        marks.append(
            LesionMark(
                lesion=lesion,
                region=region,
                level=latest[1] if latest else "",
                melanoma_probability=latest[2] if latest else None,
                change=presentation.triage_change([(day, level) for day, level, _ in results]),
                number=number,
                x=x,
                y=y,
            )
        )
    return marks[::-1]  # newest first, as the patient page lists lesions
