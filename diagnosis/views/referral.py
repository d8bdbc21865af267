"""The referrals page (open, overdue, closed), one referral's page, and closing it.

Everyone in the clinic follows referrals; only doctors close them (the decorator, then the
service again). Another clinic's referral is 404 (the selectors).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.audit import audit_record
from accounts.decorators import clinic_role_required
from accounts.models import Role
from diagnosis.forms.referral import ReferralCloseForm
from diagnosis.models import Histopathology, Referral
from diagnosis.selectors import histopathology as histopathology_selectors
from diagnosis.selectors import referral as selectors
from diagnosis.services import referral as services
from melanoma_portal.forms import apply_validation_error

PAGE_SIZE = 25


@clinic_role_required()
def referral_list(request: HttpRequest) -> HttpResponse:
    """Referrals of the clinic, soonest due first; ?status=open (the default), overdue or
    closed."""
    status = request.GET.get("status", selectors.OPEN)
    if status not in selectors.REFERRAL_FILTERS:
        messages.error(
            request, f"There is no '{status[:30]}' list of referrals; showing the open ones."
        )
        status = selectors.OPEN
    page = Paginator(selectors.referral_list(user=request.user, status=status), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    audit_record(
        action="referral.list",
        request=request,
        status=status,
        page=page.number,
        count=len(page.object_list),
    )
    context = {
        "page": page,
        "status": status,
        "filters": selectors.REFERRAL_FILTERS,
        "overdue_count": selectors.overdue_referral_count(user=request.user),
    }
    return render(request, "diagnosis/referral_list.html", context)


def _detail(
    request: HttpRequest, referral: Referral, form: ReferralCloseForm | None
) -> HttpResponse:
    """The referral's page, with the close form for a doctor while it is open. It names the
    patient, so every showing is a read of patient data."""
    audit_record(action="referral.view", request=request, obj=referral)
    context = {
        "referral": referral,
        "patient": referral.lesion.patient,
        "form": form,
    }
    status = 400 if form is not None and form.errors else 200
    return render(request, "diagnosis/referral_detail.html", context, status=status)


def _histopathology(request: HttpRequest, referral: Referral) -> Histopathology | None:
    """The lesion's recorded histology result, which the close form offers to attach."""
    _, result = histopathology_selectors.lesion_histopathology(
        user=request.user, lesion_id=referral.lesion_id
    )
    return result


@clinic_role_required()
def referral_detail(request: HttpRequest, referral_id: int) -> HttpResponse:
    referral = selectors.referral_get(user=request.user, referral_id=referral_id)
    form = None
    if request.user.role == Role.DOCTOR and not referral.is_closed:
        form = ReferralCloseForm(histopathology=_histopathology(request, referral))
    return _detail(request, referral, form)


@clinic_role_required(Role.DOCTOR)
@require_POST
def referral_close(request: HttpRequest, referral_id: int) -> HttpResponse:
    referral = selectors.referral_get(user=request.user, referral_id=referral_id)
    if referral.is_closed:
        # A second click of "Close referral", or a colleague was quicker: nothing to do.
        messages.info(request, f"This referral is already closed by {referral.closed_by_name}.")
        return redirect("diagnosis:referral_detail", referral_id=referral.pk)
    form = ReferralCloseForm(request.POST, histopathology=_histopathology(request, referral))
    if form.is_valid():
        try:
            services.referral_close(
                actor=request.user, referral=referral, request=request, **form.cleaned_data
            )
        except services.ReferralAlreadyClosed as closed:
            messages.info(request, str(closed))
            return redirect("diagnosis:referral_detail", referral_id=referral.pk)
        except ValidationError as error:
            apply_validation_error(form, error)
        else:
            messages.success(request, "Referral closed.")
            return redirect("diagnosis:referral_detail", referral_id=referral.pk)
    return _detail(request, referral, form)
