"""Views for patients' rights: download a patient's data, erase a patient
(patients.services.rights)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.audit import audit_record
from accounts.decorators import clinic_role_required
from patients.forms import EraseForm
from patients.selectors import patient_get
from patients.services import rights


@clinic_role_required(*rights.EXPORT_ROLES)
@require_GET
def patient_export(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(user=request.user, patient_id=patient_id)
    content = rights.patient_export(actor=request.user, patient=patient, request=request)
    response = HttpResponse(content, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{rights.export_filename(patient)}"'
    response["Cache-Control"] = "no-store"
    return response


@clinic_role_required(*rights.ERASE_ROLES)
@require_http_methods(["GET", "POST"])
def patient_erase(request: HttpRequest, patient_id: int) -> HttpResponse:
    # Only clinic admins see the form (the decorator); the service checks again.
    patient = patient_get(user=request.user, patient_id=patient_id)
    form = EraseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            rights.patient_erase(
                actor=request.user,
                patient=patient,
                confirm_mrn=form.cleaned_data["confirm_mrn"],
                reason=form.cleaned_data["reason"],
                request=request,
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            messages.success(request, "The patient and all their records were erased.")
            return redirect("patients:list")
    status = 400 if request.method == "POST" else 200
    # The confirmation page shows the patient's name and MRN; the erasure itself is audited by
    # the service.
    audit_record(action="patient.view", request=request, obj=patient, page="erase")
    return render(
        request,
        "patients/patient_erase.html",
        {"patient": patient, "form": form},
        status=status,
    )
