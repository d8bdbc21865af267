"""Lesion pages: recording and editing a lesion (with the body map), the lesion's own page (its
images as a timeline, by visit, with the trend of its results), the comparison of two of its
images, review by lesion, and what the patient page shows of a patient's lesions."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from accounts.audit import audit_record
from accounts.decorators import clinic_role_required
from accounts.models import Role, User
from diagnosis import body_map, presentation, selectors, services
from diagnosis.forms.lesion import LesionForm
from diagnosis.forms.review import LesionReviewForm, ReviewForm
from diagnosis.selectors.lesion import LesionMark, Timeline, TimelineEntry
from melanoma_portal.forms import apply_validation_error
from patients.models import Patient
from patients.selectors import patient_get


def _map_svg(marks: list[LesionMark], label: str, view: str = "") -> SafeString:
    svg = body_map.marks_svg(
        marks, drawing_url=static(body_map.STATIC_PATH), label=label, view=view
    )
    return mark_safe(svg)  # noqa: S308 - body_map.marks_svg escapes every string it writes


def patient_page_section(*, user: User, patient: Patient) -> tuple[str, dict[str, Any]]:
    """The patient page's lesions (each with its mark on the body map, coloured by its latest
    triage) and analyses (registered in DiagnosisConfig.ready())."""
    marks = selectors.patient_lesion_marks(user=user, patient_id=patient.pk)
    return "diagnosis/includes/patient_lesions.html", {
        "lesion_marks": marks,
        "lesions": [mark.lesion for mark in marks],
        "body_map_marks": _map_svg(marks, f"Body map of {patient.full_name}'s lesions"),
        "analyses": selectors.analyses_for_patient(user=user, patient_id=patient.pk),
    }


def _lesion_form_page(
    request: HttpRequest, form: LesionForm, patient: Patient, lesion=None
) -> HttpResponse:
    return render(
        request, "diagnosis/lesion_form.html", {"form": form, "patient": patient, "lesion": lesion}
    )


@clinic_role_required()
def lesion_create(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(user=request.user, patient_id=patient_id)
    form = LesionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            lesion = services.lesion_create(
                actor=request.user, patient=patient, request=request, **form.cleaned_data
            )
        except ValidationError as error:
            apply_validation_error(form, error)
        else:
            messages.success(request, f"Lesion recorded: {lesion}.")
            return redirect(f"{reverse('diagnosis:upload', args=[patient.pk])}?lesion={lesion.pk}")
    # The form names the patient; a recorded lesion is audited by the service instead.
    audit_record(action="patient.view", request=request, obj=patient, page="lesion_create")
    return _lesion_form_page(request, form, patient)


@clinic_role_required()
def lesion_edit(request: HttpRequest, lesion_id: int) -> HttpResponse:
    lesion = selectors.lesion_get(user=request.user, lesion_id=lesion_id)
    form = LesionForm(request.POST or None, instance=lesion)
    if request.method == "POST" and form.is_valid():
        try:
            services.lesion_update(
                actor=request.user, lesion=lesion, request=request, **form.cleaned_data
            )
        except ValidationError as error:
            apply_validation_error(form, error)
        else:
            messages.success(request, "Lesion details saved.")
            return redirect("diagnosis:lesion_detail", lesion_id=lesion.pk)
    elif request.method == "GET":
        audit_record(action="lesion.view", request=request, obj=lesion, page="edit")
    return _lesion_form_page(request, form, lesion.patient, lesion)


def _single_mark(user: User, lesion) -> tuple[list[LesionMark], SafeString]:
    marks = [
        mark
        for mark in selectors.patient_lesion_marks(user=user, patient_id=lesion.patient_id)
        if mark.lesion.pk == lesion.pk
    ]
    view = marks[0].region.view if marks and marks[0].region else ""
    return marks, _map_svg(marks, f"Where lesion {lesion.pk} is: {lesion.site_text}", view)


@clinic_role_required()
def lesion_detail(request: HttpRequest, lesion_id: int) -> HttpResponse:
    """The lesion's page: who and where, every image as a timeline by visit (date, thumbnail,
    triage, melanoma probability, review state), the trend chart, histology, and actions."""
    timeline = selectors.lesion_timeline(user=request.user, lesion_id=lesion_id)
    lesion = timeline.lesion
    marks, map_svg = _single_mark(request.user, lesion)
    results = timeline.results
    audit_record(action="lesion.view", request=request, obj=lesion, images=len(timeline.entries))
    return render(
        request,
        "diagnosis/lesion_detail.html",
        {
            "lesion": lesion,
            "patient": lesion.patient,
            "timeline": timeline,
            "mark": marks[0] if marks else None,
            "body_map_marks": map_svg,
            "trend_svg": presentation.melanoma_trend_svg(timeline.trend_points)
            if results
            else None,
            "can_compare": len(timeline.entries) > 1,
            "awaiting": timeline.awaiting_review,
        },
    )


def _pick(timeline: Timeline, raw: str | None, default: TimelineEntry | None):
    try:
        chosen = timeline.entry_for(int(raw)) if raw else None
    except ValueError:
        chosen = None
    return chosen or default


@clinic_role_required()
def lesion_compare(request: HttpRequest, lesion_id: int) -> HttpResponse:
    """Two images of the lesion side by side (?a=<image id>&b=<image id>; by default the two
    latest with a result, else the two latest), with their dates, results and the change."""
    timeline = selectors.lesion_timeline(user=request.user, lesion_id=lesion_id)
    lesion = timeline.lesion
    pool = [e for e in timeline.entries if e.level] or timeline.entries  # newest first
    default_b = pool[0] if pool else None
    default_a = pool[1] if len(pool) > 1 else None
    after = _pick(timeline, request.GET.get("b"), default_b)
    before = _pick(timeline, request.GET.get("a"), default_a)
    if before is not None and after is not None and before.image.pk == after.image.pk:
        before = next((e for e in pool if e.image.pk != after.image.pk), None)
    if (
        before is not None
        and after is not None
        and (
            (before.image.uploaded_at, before.image.pk) > (after.image.uploaded_at, after.image.pk)
        )
    ):
        before, after = after, before  # the earlier image on the left
    both_done = bool(before and after and before.level and after.level)
    audit_record(
        action="lesion.compare",
        request=request,
        obj=lesion,
        images=[entry.image.pk for entry in (before, after) if entry is not None],
    )
    days_between = (after.visit_date - before.visit_date).days if before and after else None
    change = None
    if both_done:
        change = presentation.triage_change(
            [(before.visit_date, before.level), (after.visit_date, after.level)]
        )
    return render(
        request,
        "diagnosis/lesion_compare.html",
        {
            "lesion": lesion,
            "patient": lesion.patient,
            "timeline": timeline,
            "before": before,
            "after": after,
            "both_done": both_done,
            "days_between": days_between,
            "rows": presentation.compared_rows(
                before.analysis.probabilities, after.analysis.probabilities
            )
            if both_done
            else [],
            "melanoma_change": presentation.ComparedRow(
                code="mel",
                name="Melanoma",
                before=before.analysis.melanoma_probability or 0.0,
                after=after.analysis.melanoma_probability or 0.0,
            )
            if both_done
            else None,
            "change": change,
            "trend_svg": presentation.melanoma_trend_svg(timeline.trend_points)
            if timeline.results
            else None,
        },
    )


def _coverable(timeline: Timeline, latest: TimelineEntry) -> list[TimelineEntry]:
    """The visit's older images awaiting review, which a review of `latest` may cover."""
    return [
        entry
        for entry in timeline.awaiting_review
        if entry is not latest
        and entry.visit_date == latest.visit_date
        and not entry.has_draft
        and (entry.image.uploaded_at, entry.image.pk) < (latest.image.uploaded_at, latest.image.pk)
    ]


def _describe(entry: TimelineEntry) -> str:
    analysis = entry.analysis
    return (
        f"Image {entry.image.pk}, uploaded {entry.image.uploaded_at:%H:%M}: "
        f"{presentation.level_label(entry.level)}, melanoma "
        f"{presentation.melanoma_percent(analysis.melanoma_probability)}"
    )


@clinic_role_required(Role.DOCTOR)
def lesion_review(request: HttpRequest, lesion_id: int) -> HttpResponse:
    """Review by lesion: sign the review of the newest image awaiting review and, in the same
    step, mark the same visit's older images awaiting review as covered by it."""
    timeline = selectors.lesion_timeline(user=request.user, lesion_id=lesion_id)
    lesion = timeline.lesion
    awaiting = timeline.awaiting_review  # newest first
    if not awaiting:
        audit_record(action="lesion.view", request=request, obj=lesion, page="review")
        messages.info(request, "No image of this lesion awaits review.")
        return redirect("diagnosis:lesion_detail", lesion_id=lesion.pk)
    latest = awaiting[0]
    coverable = _coverable(timeline, latest)
    analysis = latest.analysis
    current = selectors.current_review(analysis=analysis)
    form = LesionReviewForm(
        request.POST or None,
        initial=ReviewForm.initial_from(current),
        ai_suggestion=analysis.top_class,
        coverable=[(entry.analysis.pk, _describe(entry)) for entry in coverable],
    )
    if request.method == "POST" and form.is_valid():
        fields = dict(form.cleaned_data)
        chosen = set(fields.pop("cover", []))
        try:
            services.review_sign_covering(
                actor=request.user,
                analysis=analysis,
                cover=[e.analysis for e in coverable if e.analysis.pk in chosen],
                request=request,
                **fields,
            )
        except ValidationError as error:
            apply_validation_error(form, error)
        else:
            covered = len(chosen)
            messages.success(
                request,
                "Review signed."
                + (
                    f" It covers {covered} older image{'s' if covered != 1 else ''} of the visit."
                    if covered
                    else ""
                ),
            )
            return redirect("diagnosis:lesion_detail", lesion_id=lesion.pk)
    if request.method == "GET":
        audit_record(action="analysis.view", request=request, obj=analysis, page="lesion-review")
    return render(
        request,
        "diagnosis/lesion_review.html",
        {
            "lesion": lesion,
            "patient": lesion.patient,
            "latest": latest,
            "analysis": analysis,
            "coverable": coverable,
            "other_visits": [e for e in awaiting if e is not latest and e not in coverable],
            "form": form,
            "top_class_name": presentation.class_name(analysis.top_class),
            "chart_svg": presentation.probability_chart_svg(
                analysis.probabilities, top_class=analysis.top_class
            ),
        },
        status=400 if form.errors else 200,
    )
