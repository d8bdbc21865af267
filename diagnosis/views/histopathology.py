"""Histopathology follow-up: recording a lesion's histology result (doctors only) and how the
AI and the clinic's doctors agree with histology.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.audit import audit_record
from accounts.decorators import clinic_role_required
from accounts.models import Role
from diagnosis.forms.histopathology import HistopathologyForm
from diagnosis.selectors import histopathology as selectors
from diagnosis.services import histopathology as services
from melanoma_portal.forms import apply_validation_error


@clinic_role_required(Role.DOCTOR)
def histopathology_edit(request: HttpRequest, lesion_id: int) -> HttpResponse:
    lesion, result = selectors.lesion_histopathology(user=request.user, lesion_id=lesion_id)
    initial = {}
    if result is not None:
        initial = {name: getattr(result, name) for name in services.HISTOPATHOLOGY_FIELDS}
    form = HistopathologyForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.histopathology_record(
                actor=request.user, lesion=lesion, request=request, **form.cleaned_data
            )
        except ValidationError as error:
            apply_validation_error(form, error)
        else:
            messages.success(request, "Histology result recorded.")
            return redirect("diagnosis:histopathology_edit", lesion_id=lesion.pk)
    if request.method == "GET":
        # The page names the patient and shows any recorded result: a read of patient data.
        audit_record(
            action="histopathology.view",
            request=request,
            obj=result if result is not None else lesion,
            patient_id=lesion.patient_id,
        )
    context = {"form": form, "lesion": lesion, "patient": lesion.patient, "result": result}
    return render(
        request, "diagnosis/histopathology_form.html", context, status=400 if form.errors else 200
    )


@clinic_role_required(Role.DOCTOR, Role.ADMIN)
def histopathology_agreement(request: HttpRequest) -> HttpResponse:
    """How the AI and the clinic's doctors agree with histology, per reviewed analysis of the
    clinic's own cases. Counts only, no patient named (each number links to its cases);
    audited all the same, as it is derived from patient data."""
    cases = selectors.histology_cases(user=request.user)
    summary = selectors.agreement_summary(cases)
    audit_record(action="histopathology.agreement_view", request=request, cases=summary.cases)
    return render(request, "diagnosis/histopathology_agreement.html", {"summary": summary})


@clinic_role_required(Role.DOCTOR, Role.ADMIN)
def histopathology_cases(request: HttpRequest) -> HttpResponse:
    """The cases behind one number of the agreement page (?list=<name>, by default every
    reviewed case), patients named."""
    key = request.GET.get("list", "reviewed")
    if key not in selectors.CASE_LISTS:
        context = {"unknown": key[:40], "lists": selectors.CASE_LISTS}
        return render(request, "diagnosis/histopathology_cases.html", context, status=400)
    cases = selectors.case_list(selectors.histology_cases(user=request.user), key)
    audit_record(
        action="histopathology.cases_view",
        request=request,
        list=key,
        analyses=[case.analysis_id for case in cases],
    )
    context = {"cases": cases, "key": key, "title": selectors.CASE_LISTS[key].title}
    return render(request, "diagnosis/histopathology_cases.html", context)
