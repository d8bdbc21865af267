"""Doctors' review pages and the worklist.

Only doctors write reviews; a staff member who reaches those pages gets 403 (the decorator),
and another clinic's analysis is 404 (the selectors).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.audit import audit_record
from accounts.decorators import clinic_role_required
from accounts.models import Role
from diagnosis import presentation
from diagnosis.forms.review import ReviewAmendForm, ReviewForm
from diagnosis.models import Analysis, AnalysisStatus
from diagnosis.selectors import analysis_get
from diagnosis.selectors import review as review_selectors
from diagnosis.selectors.similar import similar_cases
from diagnosis.services import review as review_services
from melanoma_portal.forms import apply_validation_error


def _result_context(analysis: Analysis) -> dict:
    """What the review page shows of the result. Pictures come from the result page's
    permission-checked image URLs, which audit each view."""
    return {
        "analysis": analysis,
        "patient": analysis.image.lesion.patient,
        "lesion": analysis.image.lesion,
        "top_class_name": presentation.class_name(analysis.top_class),
        "chart_svg": presentation.probability_chart_svg(
            analysis.probabilities, top_class=analysis.top_class
        ),
    }


# Lesions per page: a clinic network's worklist holds hundreds, and one page of all of them
# took over a second to draw (bench/pages.py).
WORKLIST_PAGE_SIZE = 25


@clinic_role_required(Role.DOCTOR, Role.ADMIN)
def worklist(request: HttpRequest) -> HttpResponse:
    """Results awaiting a doctor's sign-off, one row per lesion (its newest image first, then
    the older ones); ?show=high-risk keeps only those the dashboard's "high risk awaiting
    review" tile counts (the tile links here)."""
    high_risk = request.GET.get("show") == "high-risk"
    lesion_ids, count = review_selectors.worklist_lesions(
        user=request.user, high_risk_only=high_risk
    )
    page = Paginator(lesion_ids, WORKLIST_PAGE_SIZE).get_page(request.GET.get("page"))
    groups = review_selectors.worklist_by_lesion(
        user=request.user, high_risk_only=high_risk, lesion_ids=list(page.object_list)
    )
    audit_record(
        action="worklist.view",
        request=request,
        count=count,
        lesions=len(groups),
        page=page.number,
        high_risk_only=high_risk,
    )
    return render(
        request,
        "diagnosis/worklist.html",
        {"groups": groups, "count": count, "high_risk_only": high_risk, "page": page},
    )


@clinic_role_required(Role.DOCTOR)
def review_edit(request: HttpRequest, analysis_id: int) -> HttpResponse:
    """The review page: the result, the review history, and the form for the current draft
    (or the signed review with an Amend button once signed)."""
    analysis = analysis_get(user=request.user, analysis_id=analysis_id)
    versions = review_selectors.review_versions(analysis=analysis)
    current = versions[0] if versions else None
    locked = current is not None and current.is_signed
    form = None
    if not locked:
        form = ReviewForm(
            request.POST or None,
            initial=ReviewForm.initial_from(current),
            ai_suggestion=analysis.top_class,
        )
    if request.method == "POST" and form is not None and form.is_valid():
        sign = request.POST.get("action") == "sign"
        try:
            review_services.review_save(
                actor=request.user,
                analysis=analysis,
                sign=sign,
                request=request,
                **form.cleaned_data,
            )
        except ValidationError as error:
            apply_validation_error(form, error)
        else:
            messages.success(request, "Review signed." if sign else "Draft saved (not signed).")
            return redirect("diagnosis:review_edit", analysis_id=analysis.pk)
    elif request.method == "POST" and locked:
        messages.error(request, "This review is signed and locked; amend it to change it.")
        return redirect("diagnosis:review_edit", analysis_id=analysis.pk)
    similar, show_similar = None, False
    if request.method == "GET":
        # Shown on the first view of the page, and named in its one audit event.
        similar, show_similar = similar_cases(user=request.user, analysis=analysis), True
        audit_record(
            action="analysis.view",
            request=request,
            obj=analysis,
            page="review",
            similar_cases=[case.analysis.pk for case in similar or []],
        )
    status = 200 if form is None or not form.errors else 400
    context = _result_context(analysis) | {
        "form": form,
        "current": current,
        "versions": versions,
        "locked": locked,
        "similar": similar,
        "show_similar": show_similar and analysis.status == AnalysisStatus.DONE,
    }
    return render(request, "diagnosis/review_form.html", context, status=status)


@clinic_role_required(Role.DOCTOR)
def review_amend(request: HttpRequest, analysis_id: int) -> HttpResponse:
    analysis = analysis_get(user=request.user, analysis_id=analysis_id)
    versions = review_selectors.review_versions(analysis=analysis)
    current = versions[0] if versions else None
    if current is None or not current.is_signed:
        messages.info(request, "There is no signed review to amend; edit the draft instead.")
        return redirect("diagnosis:review_edit", analysis_id=analysis.pk)
    form = ReviewAmendForm(
        request.POST or None,
        initial=ReviewForm.initial_from(current),
        ai_suggestion=analysis.top_class,
    )
    if request.method == "GET":
        audit_record(action="analysis.view", request=request, obj=analysis, page="amend")
    if request.method == "POST" and form.is_valid():
        sign = request.POST.get("action") == "sign"
        try:
            review_services.review_amend(
                actor=request.user,
                analysis=analysis,
                sign=sign,
                request=request,
                **form.cleaned_data,
            )
        except ValidationError as error:
            apply_validation_error(form, error)
        else:
            messages.success(
                request, "Amendment signed." if sign else "Amendment saved as a draft (not signed)."
            )
            return redirect("diagnosis:review_edit", analysis_id=analysis.pk)
    context = _result_context(analysis) | {
        "form": form,
        "current": current,
        "versions": versions,
        "amending": True,
    }
    return render(
        request, "diagnosis/review_amend.html", context, status=400 if form.errors else 200
    )
