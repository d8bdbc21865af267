"""Patient pages: list and search, create, edit, and one patient's page.

The patient's page shows what other apps hold about the patient (the diagnosis app: lesions and
analyses) through sections those apps register here from their AppConfig.ready(), so this app
imports none of them: dependencies point from diagnosis to patients, never back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from accounts.audit import audit_record
from accounts.decorators import clinic_role_required
from melanoma_portal.forms import apply_validation_error
from patients import selectors, services
from patients.forms import PatientForm
from patients.models import Patient

PAGE_SIZE = 25

# A section takes the user and the patient and returns its template (an include rendered on the
# patient's page) and the context that template reads, fetched with its own selectors.
PatientPageSection = Callable[..., tuple[str, dict[str, Any]]]
PATIENT_PAGE_SECTIONS: list[PatientPageSection] = []


def register_patient_page_section(section: PatientPageSection) -> PatientPageSection:
    """Show `section(user=..., patient=...)` on every patient's page, in registration order."""
    if section not in PATIENT_PAGE_SECTIONS:
        PATIENT_PAGE_SECTIONS.append(section)
    return section


@clinic_role_required()
def patient_list(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:100]
    page = Paginator(selectors.patient_list(user=request.user, search=search), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    audit_record(action="patient.list", request=request, search=search, page=page.number)
    return render(request, "patients/patient_list.html", {"page": page, "search": search})


@clinic_role_required()
def patient_create(request: HttpRequest) -> HttpResponse:
    form = PatientForm(request.POST or None, instance=Patient(clinic_id=request.user.clinic_id))
    if request.method == "POST" and form.is_valid():
        try:
            patient = services.patient_create(
                actor=request.user, request=request, **form.cleaned_data
            )
        except ValidationError as error:
            apply_validation_error(form, error)
        else:
            messages.success(request, f"Patient {patient.full_name} registered.")
            return redirect("patients:detail", patient_id=patient.pk)
    return render(request, "patients/patient_form.html", {"form": form})


@clinic_role_required()
def patient_edit(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = selectors.patient_get(user=request.user, patient_id=patient_id)
    form = PatientForm(request.POST or None, instance=patient)
    if request.method == "POST" and form.is_valid():
        try:
            services.patient_update(
                actor=request.user, patient=patient, request=request, **form.cleaned_data
            )
        except ValidationError as error:
            apply_validation_error(form, error)
        else:
            messages.success(request, "Patient details saved.")
            return redirect("patients:detail", patient_id=patient.pk)
    else:
        audit_record(action="patient.view", request=request, obj=patient, page="edit")
    return render(request, "patients/patient_form.html", {"form": form, "patient": patient})


@clinic_role_required()
def patient_detail(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = selectors.patient_get(user=request.user, patient_id=patient_id)
    context: dict[str, Any] = {"patient": patient, "age": patient.age_on(timezone.localdate())}
    section_templates = []
    for section in PATIENT_PAGE_SECTIONS:
        template, section_context = section(user=request.user, patient=patient)
        section_templates.append(template)
        context |= section_context
    audit_record(action="patient.view", request=request, obj=patient)
    context["section_templates"] = section_templates
    return render(request, "patients/patient_detail.html", context)


@clinic_role_required()
def patient_research_consent(request: HttpRequest, patient_id: int) -> HttpResponse:
    """Record or withdraw the patient's consent to the research use of their images (POST)."""
    patient = selectors.patient_get(user=request.user, patient_id=patient_id)
    if request.method != "POST":
        return redirect("patients:detail", patient_id=patient.pk)
    consent = request.POST.get("consent") == "yes"
    services.patient_set_research_consent(
        actor=request.user, patient=patient, consent=consent, request=request
    )
    messages.success(
        request,
        "Consent to research use recorded."
        if consent
        else "Consent to research use withdrawn: the patient's images leave no future export.",
    )
    return redirect("patients:detail", patient_id=patient.pk)
