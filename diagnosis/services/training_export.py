"""The learning loop's way out: the clinic's confirmed cases, of patients who consent to the
research use of their images, written in HAM10000's layout for `python -m ml.train`.

    OUT/images/<image_id>.jpg
    OUT/metadata.csv   lesion_id, image_id, dx, dx_type, age, sex, localization, dataset

Nothing that names a patient leaves: image and lesion ids are keyed hashes of the portal's ids
(stable, so the same image exported twice is recognisably the same, and unrelated to the MRN),
ages are rounded to 5 years as HAM10000's are, and each image is decoded and written anew, so
no file metadata (EXIF) travels with it. dx_type is `histo` for a histology result and `review`
for a doctor's signed diagnosis where there is none.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import hmac
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts.audit import audit_record, audited_write
from accounts.models import User
from diagnosis.selectors.model_version import HISTOPATHOLOGY, local_validation_cases

COLUMNS = ("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization", "dataset")
DATASET = "portal"


def _pseudonym(kind: str, pk: int) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"{kind}:{pk}".encode(), hashlib.sha256).hexdigest()[:16]


def _age(patient, on: datetime.date) -> str:
    if not patient.date_of_birth:
        return ""
    return str(int(5 * round(patient.age_on(on) / 5)))


@audited_write("patient.research_export")
def training_set_export(*, actor: User, since: datetime.date, out_dir: Path | str) -> dict:
    """Write the confirmed cases uploaded on or after `since` of consenting patients (all
    clinics) to `out_dir`, which must be new or empty. Superuser. One audit event per patient
    whose images were exported. Returns the counts: images, lesions, patients, and what was
    left out (no consent; not confirmed within the seven classes; original no longer kept)."""
    from diagnosis.services.image import _open_image

    if not (actor.is_authenticated and actor.is_active and actor.is_superuser):
        raise PermissionDenied("Only a superuser can export a training set.")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise ValidationError(f"{out} is not empty: choose a new folder for the export.")
    local = local_validation_cases()
    cases = [case for case in local.cases if case.image.uploaded_at.date() >= since]
    consenting = [case for case in cases if case.image.lesion.patient.research_consent]
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows, patients = [], {}
    for case in consenting:
        picture = _open_image(case.image)
        if picture is None:
            continue
        image = case.image
        lesion, patient = image.lesion, image.lesion.patient
        image_id = f"PORTAL_{_pseudonym('image', image.pk)}"
        picture.convert("RGB").save(out / "images" / f"{image_id}.jpg", "JPEG", quality=95)
        rows.append(
            {
                "lesion_id": f"PORTAL_L{_pseudonym('lesion', lesion.pk)}",
                "image_id": image_id,
                "dx": case.label,
                "dx_type": "histo" if case.source == HISTOPATHOLOGY else "review",
                "age": _age(patient, image.uploaded_at.date()),
                "sex": patient.sex if patient.sex in ("male", "female") else "unknown",
                "localization": lesion.anatomic_site,
                "dataset": DATASET,
            }
        )
        patients.setdefault(patient.pk, []).append(image_id)
    with open(out / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    summary = {
        "images": len(rows),
        "lesions": len({row["lesion_id"] for row in rows}),
        "patients": len(patients),
        "left_out": {
            "no research consent": len(cases) - len(consenting),
            **local.skipped,
        },
    }
    with transaction.atomic():
        for patient_id, image_ids in patients.items():
            audit_record(
                action="patient.research_export",
                user=actor,
                patient_id=patient_id,
                images=image_ids,
                since=since.isoformat(),
            )
    return summary
