"""Patient pages: list and search, create, edit, and one patient's lesions and analyses."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from accounts.audit import audit_record
from accounts.decorators import clinic_role_required
from diagnosis import selectors as diagnosis_selectors
from melanoma_portal.forms import apply_validation_error
from patients import selectors, services
from patients.forms import PatientForm
from patients.models import Patient

PAGE_SIZE = 25


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
    lesions = diagnosis_selectors.lesion_list(user=request.user).filter(patient=patient)
    analyses = diagnosis_selectors.analyses_for_patient(user=request.user, patient_id=patient.pk)
    audit_record(action="patient.view", request=request, obj=patient)
    return render(
        request,
        "patients/patient_detail.html",
        {
            "patient": patient,
            "age": patient.age_on(timezone.localdate()),
            "lesions": lesions,
            "analyses": analyses,
        },
    )
