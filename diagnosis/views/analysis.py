"""The dashboard and an analysis's pages: its result (or the image gate's refusal), the status
the page polls, a retry, and a doctor's override of the gate."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.audit import audit_record
from accounts.decorators import clinic_role_required
from accounts.models import Role
from diagnosis import presentation, selectors, services
from diagnosis.forms.analysis import GateOverrideForm
from diagnosis.models import Analysis, AnalysisStatus
from diagnosis.selectors.analysis import ANALYSIS_LISTS, analyses_shown
from diagnosis.selectors.analysis_wait import analysis_wait, wait_seconds
from diagnosis.selectors.model_version import latest_drift_report
from diagnosis.selectors.referral import overdue_referral_count
from diagnosis.selectors.similar import similar_cases
from melanoma_portal.forms import apply_validation_error

RECENT = 10
PAGE_SIZE = 25


QUEUE_SHOWN = 20


def _live_context(request: HttpRequest) -> dict:
    """The dashboard's tiles and live queue: what the page shows and refreshes by itself."""
    queue = list(selectors.live_queue(user=request.user)[:QUEUE_SHOWN])
    positions = selectors.queue_positions(queue)
    for analysis in queue:
        analysis.position = positions.get(analysis.pk)
    return {
        "counts": selectors.dashboard_counts(user=request.user),
        "queue": queue,
        "overdue_referrals": overdue_referral_count(user=request.user),
        "beat_late": selectors.sweep_late(),
        "drift": latest_drift_report(user=request.user),
    }


# The patients this session's dashboard last named on the audit trail (see dashboard_live).
DASHBOARD_AUDITED = "_dashboard_audited_patients"


def _audit_dashboard(request: HttpRequest, action: str, analyses: list[Analysis]) -> None:
    """One event naming each patient the dashboard shows (the queue and the recent list name
    patients and MRNs); remembered in the session, so a refresh that shows the same patients
    again adds nothing."""
    shown = sorted({analysis.image.lesion.patient_id for analysis in analyses})
    audit_record(action=action, request=request, patients=shown)
    request.session[DASHBOARD_AUDITED] = shown


@clinic_role_required()
def dashboard(request: HttpRequest) -> HttpResponse:
    context = _live_context(request)
    recent = list(selectors.analysis_list(user=request.user).order_by("-queued_at", "-id")[:RECENT])
    _audit_dashboard(request, "dashboard.view", [*context["queue"], *recent])
    context |= {"recent": recent, "live_refresh_s": settings.DASHBOARD_REFRESH_S}
    return render(request, "diagnosis/dashboard.html", context)


@clinic_role_required()
@require_GET
@never_cache
def dashboard_live(request: HttpRequest) -> HttpResponse:
    """The dashboard's tiles and live queue alone, which the dashboard fetches every few
    seconds (static/js/live_queue.js) to stay current without a reload. Audited when it names
    a patient this session's dashboard has not yet named on the audit trail."""
    context = _live_context(request)
    shown = {analysis.image.lesion.patient_id for analysis in context["queue"]}
    audited = request.session.get(DASHBOARD_AUDITED)
    if audited is None or not shown <= set(audited):
        _audit_dashboard(request, "dashboard.refresh", context["queue"])
    return render(request, "diagnosis/includes/dashboard_live.html", context)


@clinic_role_required()
def analyses(request: HttpRequest) -> HttpResponse:
    """The analyses a dashboard tile counts (?show=today, queued, failed; all by default)."""
    show = request.GET.get("show", "all")
    if show not in ANALYSIS_LISTS:
        show = "all"
    page = Paginator(analyses_shown(user=request.user, show=show), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    shown = sorted({analysis.image.lesion.patient_id for analysis in page.object_list})
    audit_record(
        action="analysis.list", request=request, show=show, page=page.number, patients=shown
    )
    return render(
        request,
        "diagnosis/analysis_list.html",
        {"page": page, "show": show, "lists": ANALYSIS_LISTS, "title": ANALYSIS_LISTS[show]},
    )


def _render_detail(
    request: HttpRequest,
    analysis: Analysis,
    *,
    override_form=None,
    status: int = 200,
    similar=None,
) -> HttpResponse:
    refused = analysis.status == AnalysisStatus.NOT_ANALYSED
    if override_form is None and refused and request.user.role == Role.DOCTOR:
        override_form = GateOverrideForm()
    return render(
        request,
        "diagnosis/analysis_detail.html",
        {
            "analysis": analysis,
            "patient": analysis.image.lesion.patient,
            "rows": (
                presentation.probability_rows(analysis.probabilities, top_class=analysis.top_class)
                if analysis.status == AnalysisStatus.DONE
                else []
            ),
            "top_class_name": presentation.class_name(analysis.top_class),
            "position": selectors.queue_position(analysis=analysis),
            "override_form": override_form,
            "show_similar": _shows_similar(request, analysis),
            "similar": similar,
        },
        status=status,
    )


@clinic_role_required()
def analysis_detail(request: HttpRequest, analysis_id: int) -> HttpResponse:
    analysis = selectors.analysis_get(user=request.user, analysis_id=analysis_id)
    similar = None
    detail = {}
    if _shows_similar(request, analysis):
        similar = similar_cases(user=request.user, analysis=analysis)
        # The similar cases are other patients' results: named in this view's one audit event.
        detail["similar_cases"] = [case.analysis.pk for case in similar or []]
    audit_record(action="analysis.view", request=request, obj=analysis, **detail)
    return _render_detail(request, analysis, similar=similar)


def _shows_similar(request: HttpRequest, analysis: Analysis) -> bool:
    """Similar confirmed cases are a doctor's comparison aid, shown with a finished result."""
    return request.user.role == Role.DOCTOR and analysis.status == AnalysisStatus.DONE


@clinic_role_required()
@require_GET
@never_cache
def analysis_status(request: HttpRequest, analysis_id: int) -> JsonResponse:
    """What the result page asks while an analysis waits: state and queue position only.
    With `?wait=S` the answer waits up to S seconds for the status to change
    (diagnosis.selectors.analysis_wait); `held` says how long it was allowed to wait (0: it
    answered at once, ask again after a pause)."""
    try:
        seconds = wait_seconds(request.GET.get("wait"))
    except ValueError as error:
        return JsonResponse({"error": str(error)}, status=400)
    analysis = selectors.analysis_get(user=request.user, analysis_id=analysis_id)
    held = analysis_wait(analysis=analysis, seconds=seconds)
    return JsonResponse(
        {
            "id": analysis.pk,
            "status": analysis.status,
            "status_display": analysis.get_status_display(),
            "queue_position": selectors.queue_position(analysis=analysis),
            "failure_reason": analysis.failure_reason,
            "held": held,
        }
    )


@clinic_role_required(Role.DOCTOR)
@require_POST
def analysis_override(request: HttpRequest, analysis_id: int) -> HttpResponse:
    """A doctor has an image the gate refused analysed anyway, with a written reason."""
    analysis = selectors.analysis_get(user=request.user, analysis_id=analysis_id)
    form = GateOverrideForm(request.POST)
    valid = form.is_valid()
    try:
        # Called even with an empty form: the service says first whether there is anything
        # to override (a second submission, say), then that a reason is needed.
        services.analysis_override_gate(
            actor=request.user,
            analysis=analysis,
            reason=form.cleaned_data["reason"] if valid else "",
            request=request,
        )
    except services.OverrideRefused as refused:
        messages.info(request, " ".join(refused.messages))
        return redirect("diagnosis:analysis", analysis_id=analysis.pk)
    except ValidationError as error:
        if valid:
            apply_validation_error(form, error)
    else:
        messages.success(
            request,
            "The image is queued for analysis without the gate. Its result will be marked "
            f"\u201c{presentation.OUTSIDE_VALIDATED_USE}\u201d with your name and reason.",
        )
        return redirect("diagnosis:analysis", analysis_id=analysis.pk)
    return _render_detail(request, analysis, override_form=form, status=400)


@clinic_role_required()
@require_POST
def analysis_retry(request: HttpRequest, analysis_id: int) -> HttpResponse:
    analysis = selectors.analysis_get(user=request.user, analysis_id=analysis_id)
    requeued = analysis.status == AnalysisStatus.FAILED
    # The service audits the request either way (requeued or not).
    services.analysis_retry(actor=request.user, analysis=analysis, request=request)
    if requeued:
        messages.success(request, "The analysis is queued again.")
    else:
        messages.info(request, f"The analysis is {analysis.get_status_display().lower()}.")
    return redirect("diagnosis:analysis", analysis_id=analysis.pk)
