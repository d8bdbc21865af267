"""The dashboard and an analysis's pages: its result, the status the page polls, a retry."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.audit import audit_record
from accounts.decorators import clinic_role_required
from diagnosis import presentation, selectors, services
from diagnosis.models import AnalysisStatus
from diagnosis.selectors.analysis import ANALYSIS_LISTS, analyses_shown
from diagnosis.selectors.referral import overdue_referral_count

RECENT = 10
PAGE_SIZE = 25


QUEUE_SHOWN = 20


def _live_context(request: HttpRequest) -> dict:
    """The dashboard's tiles and live queue: what the page shows and refreshes by itself."""
    queue = list(selectors.live_queue(user=request.user)[:QUEUE_SHOWN])
    for analysis in queue:
        analysis.position = selectors.queue_position(analysis=analysis)
    return {
        "counts": selectors.dashboard_counts(user=request.user),
        "queue": queue,
        "overdue_referrals": overdue_referral_count(user=request.user),
    }


@clinic_role_required()
def dashboard(request: HttpRequest) -> HttpResponse:
    recent = selectors.analysis_list(user=request.user).order_by("-queued_at", "-id")[:RECENT]
    context = _live_context(request) | {
        "recent": recent,
        "live_refresh_s": settings.DASHBOARD_REFRESH_S,
    }
    return render(request, "diagnosis/dashboard.html", context)


@clinic_role_required()
@require_GET
@never_cache
def dashboard_live(request: HttpRequest) -> HttpResponse:
    """The dashboard's tiles and live queue alone, which the dashboard fetches every few
    seconds (static/js/live_queue.js) to stay current without a reload."""
    return render(request, "diagnosis/includes/dashboard_live.html", _live_context(request))


@clinic_role_required()
def analyses(request: HttpRequest) -> HttpResponse:
    """The analyses a dashboard tile counts (?show=today, queued, failed; all by default)."""
    show = request.GET.get("show", "all")
    if show not in ANALYSIS_LISTS:
        show = "all"
    page = Paginator(analyses_shown(user=request.user, show=show), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    audit_record(action="analysis.list", request=request, show=show, page=page.number)
    return render(
        request,
        "diagnosis/analysis_list.html",
        {"page": page, "show": show, "lists": ANALYSIS_LISTS, "title": ANALYSIS_LISTS[show]},
    )


@clinic_role_required()
def analysis_detail(request: HttpRequest, analysis_id: int) -> HttpResponse:
    analysis = selectors.analysis_get(user=request.user, analysis_id=analysis_id)
    audit_record(action="analysis.view", request=request, obj=analysis)
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
        },
    )


@clinic_role_required()
@require_GET
@never_cache
def analysis_status(request: HttpRequest, analysis_id: int) -> JsonResponse:
    """What the result page polls while an analysis waits: state and queue position only."""
    analysis = selectors.analysis_get(user=request.user, analysis_id=analysis_id)
    return JsonResponse(
        {
            "id": analysis.pk,
            "status": analysis.status,
            "status_display": analysis.get_status_display(),
            "queue_position": selectors.queue_position(analysis=analysis),
            "failure_reason": analysis.failure_reason,
        }
    )


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
