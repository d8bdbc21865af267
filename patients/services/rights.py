"""Patients' rights under GDPR: a copy of everything held about one patient (Art. 15/20), and
erasure (Art. 17).

Both walk the same graph Django's cascade walks, so records added later by other apps (reviews,
histopathology, reports) are exported and erased without this module naming them.
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
from collections import Counter
from typing import Any

from django.contrib.admin.utils import NestedObjects
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, router, transaction
from django.utils import timezone

from accounts.audit import audit_record, audited_write
from accounts.models import AuditEvent, Role, User
from accounts.permissions import require_role, require_same_clinic
from patients.models import Patient

logger = logging.getLogger(__name__)

EXPORT_ROLES = (Role.ADMIN, Role.DOCTOR)
ERASE_ROLES = (Role.ADMIN,)
EXPORT_FORMAT_VERSION = 1


def _related_records(patient: Patient) -> dict[type[models.Model], list[models.Model]]:
    """Everything that would be deleted with the patient: the patient's own data."""
    collector = NestedObjects(using=router.db_for_write(Patient))
    collector.collect([patient])
    return {model: sorted(objs, key=lambda o: o.pk) for model, objs in collector.data.items()}


def _record(obj: models.Model, files: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"id": obj.pk}
    for field in obj._meta.concrete_fields:
        if field.primary_key:
            continue
        value = getattr(obj, field.attname)
        if isinstance(field, models.FileField):
            fieldfile = getattr(obj, field.name)
            data[field.name] = _file(fieldfile) if files and fieldfile else None
            continue
        if isinstance(value, bytes | memoryview):  # a BinaryField (an image's embedding)
            value = {"base64": base64.b64encode(bytes(value)).decode("ascii")}
        data[field.attname] = value
    return data


def _file(fieldfile) -> dict[str, Any] | None:
    try:
        # Read through the storage: encrypted originals come back decrypted.
        with fieldfile.open("rb") as handle:
            content = handle.read()
    except (OSError, ValueError):
        logger.exception("export: could not read %s", fieldfile.name)
        return {"missing": True}
    return {"size_bytes": len(content), "base64": base64.b64encode(content).decode("ascii")}


def patient_export(*, actor: User, patient: Patient, request=None) -> bytes:
    """One patient's data as JSON (UTF-8 bytes): the record, every lesion, image (with the
    image files base64-encoded), analysis, review and report, and who accessed the record when.
    Audited as 'patient.export'."""
    require_role(actor, *EXPORT_ROLES)
    require_same_clinic(actor, patient.clinic_id)
    records = _related_records(patient)
    sections: dict[str, list[dict[str, Any]]] = {}
    for model, objs in records.items():
        label = f"{model._meta.app_label}.{model._meta.model_name}"
        sections[label] = [_record(obj, files=True) for obj in objs]
    access_log = [
        {
            "at": event.at,
            "user": event.user_email,
            "role": event.role,
            "action": event.action,
            "object": f"{event.object_type}:{event.object_id}",
        }
        for event in AuditEvent.objects.filter(patient_id=patient.pk).order_by("at", "id")
    ]
    document = {
        "format": "melanoma-portal-patient-export",
        "version": EXPORT_FORMAT_VERSION,
        "exported_at": timezone.now(),
        "exported_by": actor.email,
        "clinic": patient.clinic.name,
        "patient_id": patient.pk,
        "records": sections,
        "access_log": access_log,
        "note": "AI-assisted assessments, not a diagnosis. Consult a dermatologist.",
    }
    audit_record(
        action="patient.export",
        user=actor,
        request=request,
        obj=patient,
        counts={label: len(rows) for label, rows in sections.items()},
    )
    return json.dumps(document, cls=DjangoJSONEncoder, indent=1).encode("utf-8")


def export_filename(patient: Patient, day: datetime.date | None = None) -> str:
    # The id, not the name or MRN: a downloads folder must not list patients by name.
    day = day or timezone.localdate()
    return f"patient-{patient.pk}-export-{day:%Y%m%d}.json"


@audited_write("patient.erase")
def patient_erase(
    *, actor: User, patient: Patient, confirm_mrn: str, reason: str = "", request=None
) -> dict[str, int]:
    """Erase a patient and everything recorded about them, files included.

    The person must type the patient's MRN to confirm. The audit trail keeps a tombstone: who
    erased which patient id when and how many records went, never names, MRN or results.
    Existing audit events stay (they hold ids, not health data). Returns the counts per model.
    """
    require_role(actor, *ERASE_ROLES)
    require_same_clinic(actor, patient.clinic_id)
    if confirm_mrn.strip() != patient.mrn:
        raise ValidationError(
            {"confirm_mrn": "The MRN you typed does not match this patient's; nothing was erased."}
        )
    with transaction.atomic():
        patient = Patient.objects.select_for_update().get(pk=patient.pk)
        records = _related_records(patient)
        files = [
            (getattr(obj, field.name).storage, getattr(obj, field.name).name)
            for objs in records.values()
            for obj in objs
            for field in obj._meta.concrete_fields
            if isinstance(field, models.FileField) and getattr(obj, field.name)
        ]
        counts = Counter()
        for model, objs in records.items():
            counts[f"{model._meta.app_label}.{model._meta.model_name}"] += len(objs)
        patient_id = patient.pk
        try:
            patient.delete()
        except models.ProtectedError as exc:
            raise PermissionDenied(
                "This patient has records that must be kept and cannot be erased: "
                f"{', '.join(sorted({type(o).__name__ for o in exc.protected_objects}))}."
            ) from None
        audit_record(
            action="patient.erase",
            user=actor,
            request=request,
            patient_id=patient_id,
            counts=dict(counts),
            files=len(files),
            reason=reason[:200],
        )
        transaction.on_commit(lambda: _delete_files(files))
    return dict(counts)


def _delete_files(files: list[tuple[Any, str]]) -> None:
    for storage, name in files:
        try:
            storage.delete(name)
        except OSError:
            logger.exception("erase: could not delete %s", name)
