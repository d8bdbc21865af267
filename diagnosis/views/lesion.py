"""Recording a lesion of a patient, and what the patient page shows of a patient's lesions."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts.audit import audit_record
from accounts.decorators import clinic_role_required
from accounts.models import User
from diagnosis import selectors, services
from diagnosis.forms.lesion import LesionForm
from patients.models import Patient
from patients.selectors import patient_get


def patient_page_section(*, user: User, patient: Patient) -> tuple[str, dict[str, Any]]:
    """The patient page's lesions and analyses (registered in DiagnosisConfig.ready())."""
    return "diagnosis/includes/patient_lesions.html", {
        "lesions": selectors.lesion_list(user=user).filter(patient=patient),
        "analyses": selectors.analyses_for_patient(user=user, patient_id=patient.pk),
    }


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
            form.add_error(None, error.messages)
        else:
            messages.success(request, f"Lesion recorded: {lesion}.")
            return redirect(f"{reverse('diagnosis:upload', args=[patient.pk])}?lesion={lesion.pk}")
    # The form names the patient; a recorded lesion is audited by the service instead.
    audit_record(action="patient.view", request=request, obj=patient, page="lesion_create")
    return render(request, "diagnosis/lesion_form.html", {"form": form, "patient": patient})
