"""An analysis as a FHIR R4 Bundle, for EHRs: DiagnosticReport + Observations + Media + Patient
+ the lesion as a BodyStructure (site and side).

The bundle is a `collection` whose entries refer to each other by `urn:uuid:` full URLs, so a
receiving system can store it as it is or unpack it into its own resources. Every resource is
built and validated with `fhir.resources.R4B` (FHIR 4.3, the R4 line: the same DiagnosticReport,
Observation, Media and Patient as 4.0.1; fhir.resources 8 ships no 4.0.1 models, and R5 dropped
Media). A result is `preliminary`: it is machine output until a doctor reviews it.

What else the bundle says, in diagnosis.presentation's words:
- the clinical triage (urgent / soon / routine, with its reason such as "BCC 96%") as its own
  Observation, with what the level means and does not mean as notes; a result from a model
  without triage keeps its melanoma risk-tier Observation instead;
- a result a doctor had made by overriding the image gate carries the "Outside validated use"
  mark in the report's conclusion and a note on every Observation;
- an image the gate refused (status `not_analysed`) gives a `cancelled` DiagnosticReport with
  the reason and what to do as its conclusion, and no Observation: no prediction was made.

Codes and their sources
-----------------------
SNOMED CT (http://snomed.info/sct), International Edition concepts for the classifier's
classes, where one concept means the same as the HAM10000 / ISIC 2018 class:
  mel   93655004  Malignant melanoma of skin (disorder)
  bcc   254701007 Basal cell carcinoma of skin (disorder)
  akiec 201101007 Actinic keratosis (disorder); the class also holds Bowen's disease
                  (intraepidermal carcinoma), which has no common parent with AK, so the
                  coding is the class's main member and the text names both
  nv    400096001 Melanocytic nevus (disorder)
Identifiers checked against SNOMED CT browser pages (tx.fhir.org's SNOMED browser for
400096001) and clinical terminology tables in public projects (93655004, 254701007,
201101007); re-check them on your terminology server before relying on them downstream.
  bkl, df, vasc: no SNOMED code is sent. "Benign keratosis" and "vascular lesion" are groups in
  HAM10000 (seborrhoeic keratosis, solar lentigo, lichen-planus-like keratosis; angioma,
  angiokeratoma, pyogenic granuloma, haemorrhage) with no single SNOMED concept, and the
  dermatofibroma concept id could not be verified here; these carry the portal's own code
  (CLASS_SYSTEM) and the display name, which is always present for every class.
Body site (Media.bodySite, and a BodyStructure the Media points to with the core extension
http://hl7.org/fhir/StructureDefinition/bodySite): the lesion's anatomic site as a SNOMED CT
body structure where one concept is the site, from DICOM PS3.16 Annex L (the SNOMED CT codes of
the Body Part Examined terms), cross-checked in other public terminology tables:
  abdomen 818981001 Abdomen          back 77568009 Back          ear 117590005 Ear
  face 89545001 Face                 foot 56459004 Foot          hand 85562004 Hand
  neck 45048000 Neck                 scalp 41695006 Scalp        trunk 22943007 Trunk
  upper extremity 53120007 Upper limb                lower extremity 61685007 Lower limb
  chest 51185008 Thoracic structure (DICOM's CHEST, 43799004, names the thoracic cavity, not
  the skin of the chest wall; 51185008 is the thorax as a whole)
  acral (palms and soles), genital, unknown: text only, no single verified concept.
Laterality (BodyStructure.locationQualifier): FHIR R4B's value set bodysite-laterality, left
419161000 'Unilateral left', right 419465000 'Unilateral right'; midline as text.
Dermoscopy: the report and the Media carry SNOMED CT 'Dermoscopy' only as text, not as a code:
  no SNOMED identifier for the dermoscopy procedure could be verified while writing this, and a
  wrong clinical code is worse than none. The Media's modality is DICOM 'XC' (External-camera
  Photography, DICOM PS3.16 CID 29), the modality under which dermoscopic photographs are
  stored as DICOM VL Photographic images.
"""

from __future__ import annotations

import base64
import hashlib
import uuid

from django.utils import timezone
from fhir.resources.R4B.bodystructure import BodyStructure
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.media import Media
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient as FHIRPatient

from diagnosis.models import Analysis
from diagnosis.presentation import (
    CLASS_NAMES,
    DISCLAIMER,
    ai_suggestion_text,
    class_name,
    override_of,
    refusal_of,
    risk_tier_label,
    triage_of,
)
from ml.classes import CLASSES

SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
DICOM_DCM = "http://dicom.nema.org/resources/ontology/DCM"
# The portal's own code systems: a URL we control names them (FHIR requires an absolute URI).
PORTAL = "https://melanoma-portal.example/fhir"
CLASS_SYSTEM = f"{PORTAL}/CodeSystem/ham10000-class"
OBSERVATION_SYSTEM = f"{PORTAL}/CodeSystem/ai-observation"
RISK_SYSTEM = f"{PORTAL}/CodeSystem/risk-tier"
TRIAGE_SYSTEM = f"{PORTAL}/CodeSystem/triage"
MODEL_SYSTEM = f"{PORTAL}/model-version"

CLASS_SNOMED: dict[str, tuple[str, str]] = {
    "mel": ("93655004", "Malignant melanoma of skin"),
    "bcc": ("254701007", "Basal cell carcinoma of skin"),
    "akiec": ("201101007", "Actinic keratosis"),
    "nv": ("400096001", "Melanocytic nevus"),
}

_GENDER = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}

SITE_SNOMED: dict[str, tuple[str, str]] = {
    "abdomen": ("818981001", "Abdomen"),
    "back": ("77568009", "Back"),
    "chest": ("51185008", "Thoracic structure"),
    "ear": ("117590005", "Ear"),
    "face": ("89545001", "Face"),
    "foot": ("56459004", "Foot"),
    "hand": ("85562004", "Hand"),
    "lower extremity": ("61685007", "Lower limb"),
    "neck": ("45048000", "Neck"),
    "scalp": ("41695006", "Scalp"),
    "trunk": ("22943007", "Trunk"),
    "upper extremity": ("53120007", "Upper limb"),
}
LATERALITY_SNOMED: dict[str, tuple[str, str]] = {
    "left": ("419161000", "Unilateral left"),
    "right": ("419465000", "Unilateral right"),
}
BODY_SITE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/bodySite"


def body_site_concept(lesion) -> dict:
    """The lesion's site as a CodeableConcept: SNOMED CT where verified, always the words
    (with the side, e.g. 'Upper extremity, left')."""
    concept: dict = {"text": lesion.site_text}
    if lesion.anatomic_site in SITE_SNOMED:
        code, display = SITE_SNOMED[lesion.anatomic_site]
        concept["coding"] = [{"system": SNOMED, "code": code, "display": display}]
    return concept


def laterality_concept(lesion) -> dict | None:
    if not lesion.laterality:
        return None
    concept: dict = {"text": lesion.get_laterality_display()}
    if lesion.laterality in LATERALITY_SNOMED:
        code, display = LATERALITY_SNOMED[lesion.laterality]
        concept["coding"] = [{"system": SNOMED, "code": code, "display": display}]
    return concept


def _body_structure(lesion, patient_ref: str, base_url: str) -> BodyStructure:
    """The lesion as a FHIR BodyStructure: where it is (site and side), and its label and size
    in words."""
    side = laterality_concept(lesion)
    words = [lesion.label] if lesion.label else []
    if lesion.size_mm is not None:
        words.append(f"largest diameter {lesion.size_mm.normalize():f} mm")
    return BodyStructure(
        identifier=[{"system": f"{base_url}lesions", "value": str(lesion.pk)}],
        active=True,
        location=body_site_concept(lesion),
        locationQualifier=[side] if side else None,
        description="; ".join(words) or None,
        patient={"reference": patient_ref},
    )


def class_concept(code: str) -> dict:
    """A CodeableConcept for a classifier class: the portal's code, SNOMED CT where one fits."""
    codings = [{"system": CLASS_SYSTEM, "code": code, "display": class_name(code)}]
    if code in CLASS_SNOMED:
        sct, display = CLASS_SNOMED[code]
        codings.append({"system": SNOMED, "code": sct, "display": display})
    return {"coding": codings, "text": class_name(code)}


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _instant(value) -> str | None:
    return value.isoformat() if value is not None else None


def _patient(analysis: Analysis, base_url: str) -> FHIRPatient:
    patient = analysis.image.lesion.patient
    return FHIRPatient(
        identifier=[
            {
                "use": "usual",
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                            "code": "MR",
                            "display": "Medical record number",
                        }
                    ]
                },
                # MRNs are unique per clinic, so the clinic is part of the identifier's system.
                "system": f"{base_url}clinics/{patient.clinic_id}/mrn",
                "value": patient.mrn,
            }
        ],
        name=[{"family": patient.last_name, "given": [patient.first_name]}],
        gender=_GENDER.get(patient.sex, "unknown"),
        birthDate=patient.date_of_birth.isoformat(),
    )


def _media(analysis: Analysis, patient_ref: str, body_structure_ref: str) -> Media:
    image = analysis.image
    lesion = image.lesion
    content: dict = {"contentType": image.content_type, "title": f"Dermoscopic image {image.pk}"}
    stored = image.file if image.file and not image.original_deleted_at else None
    if stored is not None:
        with stored.open("rb") as handle:
            data = handle.read()
        content["data"] = base64.b64encode(data).decode("ascii")
        content["size"] = len(data)
        # Attachment.hash is the base64 of the SHA-1 of the data (FHIR's definition).
        content["hash"] = base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")  # noqa: S324
    return Media(
        status="completed",
        type={
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/media-type",
                    "code": "image",
                    "display": "Image",
                }
            ]
        },
        modality={
            "coding": [
                {"system": DICOM_DCM, "code": "XC", "display": "External-camera Photography"}
            ],
            "text": "Dermoscopy",
        },
        subject={"reference": patient_ref},
        createdDateTime=_instant(image.uploaded_at),
        bodySite=body_site_concept(lesion),
        extension=[
            {"url": BODY_SITE_EXTENSION, "valueReference": {"reference": body_structure_ref}}
        ],
        width=image.width,
        height=image.height,
        content=content,
        note=[]
        if stored is not None
        else [{"text": "The original image was deleted under the clinic's retention policy."}],
    )


def _notes(analysis: Analysis, *texts: str) -> list[dict]:
    """Observation notes: the outside-validated-use mark first when there is one."""
    mark = override_of(analysis)
    return [{"text": text} for text in ([mark.text] if mark else []) + list(texts)]


def _probability_observation(
    analysis: Analysis, code: str, probability: float, patient_ref: str, media_ref: str
) -> Observation:
    concept = class_concept(code)
    return Observation(
        status="preliminary",
        category=[
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "imaging",
                        "display": "Imaging",
                    }
                ]
            }
        ],
        code={
            "coding": [
                {
                    "system": OBSERVATION_SYSTEM,
                    "code": f"probability-{code}",
                    "display": f"AI probability: {class_name(code)}",
                }
            ],
            "text": f"AI-estimated probability of {class_name(code)}",
        },
        subject={"reference": patient_ref},
        effectiveDateTime=_instant(analysis.finished_at),
        valueQuantity={
            "value": round(float(probability), 6),
            "unit": "probability",
            "system": UCUM,
            "code": "1",
        },
        # What the probability is about, with SNOMED CT where the class has a concept.
        component=[
            {
                "code": {"text": "Lesion class"},
                "valueCodeableConcept": concept,
            }
        ],
        derivedFrom=[{"reference": media_ref}],
        device={"display": f"Melanoma Portal classifier {analysis.model_version}"},
        note=_notes(analysis),
    )


def _triage_observation(analysis: Analysis, patient_ref: str, media_ref: str) -> Observation:
    shown = triage_of(analysis)
    return Observation(
        status="preliminary",
        code={
            "coding": [
                {"system": OBSERVATION_SYSTEM, "code": "triage", "display": "AI clinical triage"}
            ],
            "text": "AI clinical triage of the lesion (melanoma, BCC, AK/Bowen's)",
        },
        subject={"reference": patient_ref},
        effectiveDateTime=_instant(analysis.finished_at),
        valueCodeableConcept={
            "coding": [{"system": TRIAGE_SYSTEM, "code": shown.level, "display": shown.label}],
            "text": shown.text,
        },
        derivedFrom=[{"reference": media_ref}],
        device={"display": f"Melanoma Portal classifier {analysis.model_version}"},
        note=_notes(analysis, shown.wording.means, shown.wording.does_not_mean, DISCLAIMER),
    )


def _risk_observation(analysis: Analysis, patient_ref: str, media_ref: str) -> Observation:
    tier = analysis.risk_tier
    return Observation(
        status="preliminary",
        code={
            "coding": [
                {"system": OBSERVATION_SYSTEM, "code": "risk-tier", "display": "AI risk tier"}
            ],
            "text": "AI-assessed risk tier of the lesion",
        },
        subject={"reference": patient_ref},
        effectiveDateTime=_instant(analysis.finished_at),
        valueCodeableConcept={
            "coding": [{"system": RISK_SYSTEM, "code": tier, "display": risk_tier_label(tier)}],
            "text": risk_tier_label(tier),
        },
        derivedFrom=[{"reference": media_ref}],
        device={"display": f"Melanoma Portal classifier {analysis.model_version}"},
        note=_notes(analysis, DISCLAIMER),
    )


def analysis_bundle(*, analysis: Analysis, base_url: str) -> dict:
    """The finished analysis (done, or not analysed) as a FHIR R4 collection Bundle, as
    JSON-ready data.

    `base_url` is the portal's address (for the MRN's identifier system). Raises
    pydantic's ValidationError if a resource would not validate: a bug, never sent out.
    """
    patient_ref, media_ref, report_ref = _urn(), _urn(), _urn()
    body_structure_ref = _urn()
    patient = _patient(analysis, base_url)
    media = _media(analysis, patient_ref, body_structure_ref)
    body_structure = _body_structure(analysis.image.lesion, patient_ref, base_url)
    refusal = refusal_of(analysis)
    observations: list[tuple[str, Observation]] = []
    if refusal is not None:
        status, conclusion, conclusion_code = "cancelled", f"{refusal.text} {DISCLAIMER}", []
    else:
        observations = [
            (
                _urn(),
                _probability_observation(
                    analysis, code, analysis.probabilities[code], patient_ref, media_ref
                ),
            )
            for code in CLASSES
            if code in analysis.probabilities
        ]
        if triage_of(analysis) is not None:
            observations.append((_urn(), _triage_observation(analysis, patient_ref, media_ref)))
        else:
            observations.append((_urn(), _risk_observation(analysis, patient_ref, media_ref)))
        top = analysis.top_class
        suggestion = ai_suggestion_text(
            top_class=top,
            melanoma_probability=analysis.melanoma_probability,
            risk_tier=analysis.risk_tier,
            triage_level=analysis.triage_level,
            triage_reason=analysis.triage_reason,
        )
        mark = override_of(analysis)
        conclusion = " ".join([*([mark.text] if mark else []), suggestion, DISCLAIMER])
        status = "preliminary"
        conclusion_code = [class_concept(top)] if top in CLASS_NAMES else []
    report = DiagnosticReport(
        identifier=[{"system": f"{base_url}analyses", "value": str(analysis.pk)}],
        status=status,
        code={
            "coding": [
                {
                    "system": OBSERVATION_SYSTEM,
                    "code": "dermoscopy-ai-assessment",
                    "display": "AI assessment of a dermoscopic image",
                }
            ],
            "text": "Dermoscopy: AI-assisted assessment of a skin lesion",
        },
        subject={"reference": patient_ref},
        effectiveDateTime=_instant(analysis.image.uploaded_at),
        issued=_instant(analysis.finished_at or timezone.now()),
        result=[{"reference": ref} for ref, _ in observations],
        media=[
            {
                "comment": "Dermoscopic image refused by the image gate"
                if refusal is not None
                else "Dermoscopic image analysed",
                "link": {"reference": media_ref},
            }
        ],
        conclusion=conclusion,
        conclusionCode=conclusion_code,
    )
    entries = [
        (report_ref, report),
        (patient_ref, patient),
        (media_ref, media),
        (body_structure_ref, body_structure),
        *observations,
    ]
    bundle = Bundle(
        type="collection",
        timestamp=timezone.now().isoformat(),
        entry=[{"fullUrl": ref, "resource": resource} for ref, resource in entries],
    )
    return bundle.model_dump(mode="json", exclude_none=True)
