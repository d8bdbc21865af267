"""FHIR R4 export of an analysis: a Bundle that validates with fhir.resources."""

from __future__ import annotations

import base64

from fhir.resources.R4B.bundle import Bundle

from accounts.models import AuditEvent
from diagnosis.fhir import SNOMED
from tests.api.conftest import PROBABILITIES


def resources(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_export_is_a_valid_bundle_with_report_observations_media_and_patient(api, done_analysis):
    response = api.get(f"/api/v1/analyses/{done_analysis.pk}/fhir/")

    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/fhir+json")
    bundle = response.json()
    Bundle.model_validate(bundle)  # raises if anything is not valid FHIR
    assert bundle["type"] == "collection"
    [report] = resources(bundle, "DiagnosticReport")
    [patient] = resources(bundle, "Patient")
    [media] = resources(bundle, "Media")
    observations = resources(bundle, "Observation")
    assert len(observations) == len(PROBABILITIES) + 1
    assert len(report["result"]) == len(observations)
    assert report["status"] == "preliminary"
    assert "not a diagnosis" in report["conclusion"]
    assert patient["identifier"][0]["value"] == done_analysis.image.lesion.patient.mrn
    assert patient["birthDate"] == "1970-05-17"


def test_references_point_at_entries_of_the_bundle(api, done_analysis):
    bundle = api.get(f"/api/v1/analyses/{done_analysis.pk}/fhir/").json()
    full_urls = {entry["fullUrl"] for entry in bundle["entry"]}
    [report] = resources(bundle, "DiagnosticReport")

    refs = [r["reference"] for r in report["result"]]
    refs += [report["subject"]["reference"], report["media"][0]["link"]["reference"]]

    assert set(refs) <= full_urls


def test_class_probabilities_carry_snomed_codes_where_they_exist(api, done_analysis):
    bundle = api.get(f"/api/v1/analyses/{done_analysis.pk}/fhir/").json()
    by_class = {}
    for observation in resources(bundle, "Observation"):
        code = observation["code"]["coding"][0]["code"]
        if code.startswith("probability-"):
            by_class[code.removeprefix("probability-")] = observation

    assert {k: v["valueQuantity"]["value"] for k, v in by_class.items()} == PROBABILITIES
    mel_codings = by_class["mel"]["component"][0]["valueCodeableConcept"]["coding"]
    assert {"system": SNOMED, "code": "93655004"}.items() <= mel_codings[1].items()
    nv_codes = [c["code"] for c in by_class["nv"]["component"][0]["valueCodeableConcept"]["coding"]]
    assert "400096001" in nv_codes
    [report] = resources(bundle, "DiagnosticReport")
    assert report["conclusionCode"][0]["coding"][1]["code"] == "93655004"


def test_risk_tier_is_its_own_observation(api, done_analysis):
    bundle = api.get(f"/api/v1/analyses/{done_analysis.pk}/fhir/").json()

    [risk] = [
        o for o in resources(bundle, "Observation") if o["code"]["coding"][0]["code"] == "risk-tier"
    ]

    assert risk["valueCodeableConcept"]["coding"][0]["code"] == "high"


def test_media_carries_the_stored_image(api, done_analysis):
    bundle = api.get(f"/api/v1/analyses/{done_analysis.pk}/fhir/").json()
    [media] = resources(bundle, "Media")

    with done_analysis.image.file.open("rb") as handle:
        stored = handle.read()

    assert base64.b64decode(media["content"]["data"]) == stored
    assert media["content"]["contentType"] == "image/jpeg"
    assert (media["width"], media["height"]) == (200, 150)


def test_export_is_audited(api, staff, done_analysis):
    api.get(f"/api/v1/analyses/{done_analysis.pk}/fhir/")

    assert AuditEvent.objects.filter(
        action="analysis.fhir_export", user=staff, object_id=str(done_analysis.pk)
    ).exists()


def test_unfinished_analysis_is_409_with_message(api, queued_analysis):
    response = api.get(f"/api/v1/analyses/{queued_analysis.pk}/fhir/")

    assert response.status_code == 409
    assert "once its status is done" in response.json()["message"]


def test_other_clinics_analysis_export_is_404(other_api, done_analysis):
    assert other_api.get(f"/api/v1/analyses/{done_analysis.pk}/fhir/").status_code == 404
    assert not AuditEvent.objects.filter(action="analysis.fhir_export").exists()
