"""Writes of lesions, and what the classifier reads of a lesion besides its image."""

from __future__ import annotations

from django.db import transaction

from accounts.audit import audit_record, audited_write
from accounts.models import User
from accounts.permissions import CLINICAL_ROLES, require_role, require_same_clinic
from diagnosis.models import DermoscopicImage, Lesion
from patients.models import Patient


@audited_write("lesion.create")
def lesion_create(
    *, actor: User, patient: Patient, anatomic_site: str, label: str = "", request=None
) -> Lesion:
    require_role(actor, *CLINICAL_ROLES)
    require_same_clinic(actor, patient.clinic_id)
    lesion = Lesion(patient=patient, anatomic_site=anatomic_site, label=label, created_by=actor)
    lesion.full_clean()
    with transaction.atomic():
        lesion.save()
        audit_record(action="lesion.create", user=actor, request=request, obj=lesion)
    return lesion


def lesion_metadata(image: DermoscopicImage):
    """What the clinic recorded about the imaged lesion, as the classifier reads it: the
    patient's age on the day the image was taken (uploaded), sex, and the lesion's site.
    'other'/'unknown' sex and 'unknown' site count as missing, as in training."""
    from ml.metadata import parse

    lesion = image.lesion
    patient = lesion.patient
    age = patient.age_on(image.uploaded_at.date()) if patient.date_of_birth else None
    return parse(age=age, sex=patient.sex, site=lesion.anatomic_site)
