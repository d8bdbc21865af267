"""Reads of patient records, always scoped to the user's clinic."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from accounts.models import User
from accounts.permissions import is_clinic_member
from patients.models import Patient


def patient_list(*, user: User, search: str = "") -> QuerySet[Patient]:
    """The user's clinic's patients, filtered by name or MRN; empty for anyone outside one."""
    if not is_clinic_member(user):
        return Patient.objects.none()
    patients = Patient.objects.filter(clinic_id=user.clinic_id)
    for term in search.split():
        patients = patients.filter(
            Q(first_name__icontains=term) | Q(last_name__icontains=term) | Q(mrn__icontains=term)
        )
    return patients


def patient_get(*, user: User, patient_id: int) -> Patient:
    """One patient of the user's clinic; another clinic's id is indistinguishable from none."""
    try:
        return patient_list(user=user).select_related("clinic").get(pk=patient_id)
    except Patient.DoesNotExist:
        raise Http404("No such patient.") from None
