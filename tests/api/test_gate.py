"""The image gate, the doctor's override and the triage through the REST API and FHIR.

A refused image's analysis carries its reason and what to do (`not_analysed`), never a
probability, in the JSON and in the FHIR bundle; a doctor overrides with a reason (202, then 409
for a second try); the result then carries `outside_validated_use`; the triage comes with its
reason and wording.
"""

from __future__ import annotations

import json

import pytest
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle

from accounts.models import AuditEvent
from diagnosis.fhir import TRIAGE_SYSTEM
from diagnosis.models import AnalysisStatus
from tests import factories
from tests.api.conftest import token_client

REASON = "Dermoscopic image from a new device; checked by eye"


@pytest.fixture
def refused(image):
    return factories.NotAnalysedFactory(image=image)


@pytest.fixture
def doctor_api(doctor):
    return token_client(doctor)


@pytest.fixture
def overridden(image, doctor):
    return factories.TriagedAnalysisFactory(
        image=image,
        gate_reason="not_dermoscopic",
        gate_message="This does not look like a dermoscopic image of a skin lesion.",
        overridden_at=timezone.now(),
        overridden_by=doctor,
        overridden_by_name=doctor.get_full_name(),
        override_reason=REASON,
    )


def _resources(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _has_no_probability(text: str) -> None:
    lowered = text.lower()
    assert "probabilit" not in lowered
    assert "%" not in text
    for name in ("melanoma", "basal cell carcinoma", "nevus", "risk tier", "triage"):
        assert name not in lowered.replace("melanoma portal", ""), name


def test_refused_analysis_gives_the_reason_and_no_result(api, refused):
    response = api.get(f"/api/v1/analyses/{refused.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "not_analysed"
    assert body["result"] is None
    refusal = body["not_analysed"]
    assert refusal["reason_code"] == "not_dermoscopic"
    assert refusal["headline"] == (
        "Not analysed: this does not look like a dermoscopic image of a skin lesion."
    )
    assert "Retake the image with the dermatoscope" in refusal["advice"]
    assert refusal["measures"]["ood_score"] == 76494.6
    assert refusal["model_version"] == "ham10000-test-v2"
    _has_no_probability(json.dumps({k: v for k, v in body.items() if k != "disclaimer"}))


def test_list_filters_not_analysed(api, refused, done_analysis):
    rows = api.get("/api/v1/analyses/", {"status": "not_analysed"}).json()["results"]
    assert [row["id"] for row in rows] == [refused.pk]
    assert rows[0]["not_analysed"]["reason_code"] == "not_dermoscopic"


def test_refused_analysis_fhir_is_a_cancelled_report_without_observations(api, refused):
    response = api.get(f"/api/v1/analyses/{refused.pk}/fhir/")

    assert response.status_code == 200, response.content
    bundle = response.json()
    Bundle.model_validate(bundle)
    [report] = _resources(bundle, "DiagnosticReport")
    assert report["status"] == "cancelled"
    assert report["conclusion"].startswith("Not analysed: this does not look like a dermoscopic")
    assert "What to do:" in report["conclusion"]
    assert _resources(bundle, "Observation") == []
    assert "result" not in report and "conclusionCode" not in report
    text = json.dumps(report)
    assert "probabilit" not in text.lower() and "%" not in text


def test_staff_may_not_override(api, refused):
    response = api.post(f"/api/v1/analyses/{refused.pk}/override/", {"reason": REASON})

    assert response.status_code == 403
    refused.refresh_from_db()
    assert refused.status == AnalysisStatus.NOT_ANALYSED


def test_override_needs_a_reason(doctor_api, refused):
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        response = doctor_api.post(f"/api/v1/analyses/{refused.pk}/override/", body, format="json")
        assert response.status_code == 400, body
        assert "reason" in response.json()["errors"]
    assert not AuditEvent.objects.filter(action="analysis.override_gate").exists()


def test_doctor_overrides_once_and_a_second_try_is_409(
    doctor_api, doctor, refused, django_capture_on_commit_callbacks
):
    url = f"/api/v1/analyses/{refused.pk}/override/"
    with django_capture_on_commit_callbacks() as sent:
        first = doctor_api.post(url, {"reason": REASON}, format="json")
        second = doctor_api.post(url, {"reason": "again"}, format="json")

    assert first.status_code == 202, first.content
    assert first.json()["status"] == "queued"
    assert first["Location"].endswith(f"/api/v1/analyses/{refused.pk}/")
    assert second.status_code == 409
    assert "already overrode" in second.json()["message"]
    assert len(sent) == 1
    assert AuditEvent.objects.filter(action="analysis.override_gate").count() == 1
    refused.refresh_from_db()
    assert refused.override_reason == REASON and refused.overridden_by == doctor


def test_override_of_an_analysed_image_is_409(doctor_api, done_analysis):
    response = doctor_api.post(
        f"/api/v1/analyses/{done_analysis.pk}/override/", {"reason": REASON}, format="json"
    )
    assert response.status_code == 409
    assert "only an analysis whose image the gate refused" in response.json()["message"]


def test_overridden_result_carries_the_outside_validated_use_mark(api, overridden, doctor):
    result = api.get(f"/api/v1/analyses/{overridden.pk}/").json()["result"]

    mark = result["outside_validated_use"]
    assert mark["label"] == "Outside validated use"
    assert mark["reason"] == REASON
    assert mark["overridden_by"] == doctor.get_full_name()
    assert "this does not look like a dermoscopic image" in mark["gate_reason"]
    assert mark["text"].startswith("Outside validated use: the image gate refused this image")


def test_overridden_result_fhir_carries_the_mark(api, overridden):
    bundle = api.get(f"/api/v1/analyses/{overridden.pk}/fhir/").json()

    Bundle.model_validate(bundle)
    [report] = _resources(bundle, "DiagnosticReport")
    assert report["conclusion"].startswith("Outside validated use:")
    assert REASON in report["conclusion"]
    for observation in _resources(bundle, "Observation"):
        assert observation["note"][0]["text"].startswith("Outside validated use:")


def test_result_carries_the_triage_with_reason_and_wording(api, image):
    analysis = factories.TriagedAnalysisFactory(image=image)

    result = api.get(f"/api/v1/analyses/{analysis.pk}/").json()["result"]

    assert result["triage"]["level"] == "soon"
    assert result["triage"]["reason"] == "BCC 96%"
    assert result["triage"]["text"] == "Soon — BCC 96%"
    assert "basal cell carcinoma" in result["triage"]["means"]
    assert result["outside_validated_use"] is None


def test_an_old_result_has_no_triage_and_keeps_its_risk_tier(api, done_analysis):
    result = api.get(f"/api/v1/analyses/{done_analysis.pk}/").json()["result"]
    assert result["triage"] is None and result["risk_tier"] == "high"


def test_fhir_sends_the_triage_as_its_own_observation_instead_of_the_tier(api, image):
    analysis = factories.TriagedAnalysisFactory(image=image)

    bundle = api.get(f"/api/v1/analyses/{analysis.pk}/fhir/").json()

    Bundle.model_validate(bundle)
    observations = _resources(bundle, "Observation")
    [triage] = [o for o in observations if o["code"]["coding"][0]["code"] == "triage"]
    assert triage["valueCodeableConcept"]["coding"][0] == {
        "system": TRIAGE_SYSTEM,
        "code": "soon",
        "display": "Soon",
    }
    assert triage["valueCodeableConcept"]["text"] == "Soon — BCC 96%"
    notes = " ".join(note["text"] for note in triage["note"])
    assert "not a diagnosis of cancer" in notes
    assert not [o for o in observations if o["code"]["coding"][0]["code"] == "risk-tier"]
    [report] = _resources(bundle, "DiagnosticReport")
    assert "triage: Soon — BCC 96%" in report["conclusion"]
