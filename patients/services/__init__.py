"""Writes to patient records (`records`) and patients' rights under GDPR (`rights`: a copy of
everything held, erasure). Each write checks permission first and records its audit event in
its own transaction."""

from patients.services.records import (
    PATIENT_FIELDS,
    patient_create,
    patient_set_research_consent,
    patient_update,
)
from patients.services.rights import (
    ERASE_ROLES,
    EXPORT_ROLES,
    export_filename,
    patient_erase,
    patient_export,
)

__all__ = [
    "ERASE_ROLES",
    "EXPORT_ROLES",
    "PATIENT_FIELDS",
    "export_filename",
    "patient_create",
    "patient_erase",
    "patient_export",
    "patient_set_research_consent",
    "patient_update",
]
