"""Writes of lesions, and what the classifier reads of a lesion besides its image."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.audit import audit_record, audited_write
from accounts.models import User
from accounts.permissions import CLINICAL_ROLES, require_role, require_same_clinic
from diagnosis.models import DermoscopicImage, Lesion
from patients.models import Patient

# What a person records about a lesion; the patient and the author are set by the service.
LESION_FIELDS = ("anatomic_site", "laterality", "size_mm", "body_map_region", "label")


def _check_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(LESION_FIELDS)
    if unknown:
        raise TypeError(f"unknown lesion fields: {sorted(unknown)}")


@audited_write("lesion.create")
def lesion_create(
    *, actor: User, patient: Patient, anatomic_site: str, request=None, **fields: Any
) -> Lesion:
    """Record a lesion of a patient: its site, and optionally its side, size (mm), the body
    map region it was chosen on, and a label. Raises ValidationError with the field's words."""
    require_role(actor, *CLINICAL_ROLES)
    require_same_clinic(actor, patient.clinic_id)
    _check_fields(fields)
    lesion = Lesion(patient=patient, anatomic_site=anatomic_site, created_by=actor, **fields)
    lesion.full_clean()
    with transaction.atomic():
        lesion.save()
        audit_record(action="lesion.create", user=actor, request=request, obj=lesion)
    return lesion


@audited_write("lesion.update")
def lesion_update(*, actor: User, lesion: Lesion, request=None, **fields: Any) -> Lesion:
    """Change what was recorded about a lesion (a size measured at a later visit, a side or
    site corrected). Its images and analyses stay with it; a result keeps the site the model
    read when it was made (Analysis.metadata_used)."""
    require_role(actor, *CLINICAL_ROLES)
    require_same_clinic(actor, lesion.patient.clinic_id)
    _check_fields(fields)
    with transaction.atomic():
        lesion = Lesion.objects.select_for_update().select_related("patient").get(pk=lesion.pk)
        changed = sorted(name for name, value in fields.items() if getattr(lesion, name) != value)
        for name, value in fields.items():
            setattr(lesion, name, value)
        lesion.full_clean(exclude=["created_by"])
        lesion.save()
        audit_record(
            action="lesion.update", user=actor, request=request, obj=lesion, fields=changed
        )
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
