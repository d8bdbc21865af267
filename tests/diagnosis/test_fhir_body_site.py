"""The FHIR export says where the lesion is: its site as a SNOMED CT body structure where one
was verified (text always), and its side, on the Media and on a BodyStructure it points to."""

from __future__ import annotations

from decimal import Decimal

from diagnosis import fhir
from tests import factories
from tests.diagnosis.lesion_world import result

SNOMED = "http://snomed.info/sct"


def _bundle(analysis) -> dict:
    return fhir.analysis_bundle(analysis=analysis, base_url="https://portal.example/")


def _one(bundle: dict, kind: str) -> dict:
    (resource,) = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]
    return resource


def test_site_and_side_go_on_the_media_and_a_body_structure(patient):
    lesion = factories.LesionFactory(
        patient=patient,
        anatomic_site="upper extremity",
        laterality="left",
        size_mm=Decimal("6.0"),
        label="forearm",
    )
    bundle = _bundle(result(lesion))
    media, structure = _one(bundle, "Media"), _one(bundle, "BodyStructure")

    site = {"system": SNOMED, "code": "53120007", "display": "Upper limb"}
    assert media["bodySite"] == {"coding": [site], "text": "Upper extremity, left, 6 mm"}
    assert structure["location"]["coding"] == [site]
    assert structure["locationQualifier"] == [
        {
            "coding": [{"system": SNOMED, "code": "419161000", "display": "Unilateral left"}],
            "text": "Left",
        }
    ]
    assert structure["description"] == "forearm; largest diameter 6 mm"
    # The Media points to the BodyStructure, and both to the bundle's patient.
    structure_url = next(
        e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "BodyStructure"
    )
    assert media["extension"] == [
        {
            "url": "http://hl7.org/fhir/StructureDefinition/bodySite",
            "valueReference": {"reference": structure_url},
        }
    ]
    assert structure["patient"] == media["subject"]


def test_a_site_without_a_verified_code_is_sent_as_text_only(patient):
    lesion = factories.LesionFactory(patient=patient, anatomic_site="acral", laterality="midline")
    bundle = _bundle(result(lesion))
    media, structure = _one(bundle, "Media"), _one(bundle, "BodyStructure")

    assert media["bodySite"] == {"text": "Acral, midline"}
    assert "coding" not in structure["location"]
    assert structure["locationQualifier"] == [{"text": "Midline"}]


def test_every_mapped_site_code_is_a_plain_snomed_identifier():
    from diagnosis.models import AnatomicSite

    assert set(fhir.SITE_SNOMED) <= set(AnatomicSite.values)
    assert set(AnatomicSite.values) - set(fhir.SITE_SNOMED) == {"acral", "genital", "unknown"}
    for code, _ in [*fhir.SITE_SNOMED.values(), *fhir.LATERALITY_SNOMED.values()]:
        assert code.isdigit() and 6 <= len(code) <= 18
