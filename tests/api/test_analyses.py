"""Analyses through the API: status while waiting, the result and disclaimer when done."""

from __future__ import annotations

from accounts.models import AuditEvent
from diagnosis.models import Analysis
from diagnosis.presentation import DISCLAIMER
from tests import factories
from tests.api.conftest import PROBABILITIES


def test_done_analysis_gives_result_and_disclaimer(api, done_analysis):
    response = api.get(f"/api/v1/analyses/{done_analysis.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "done"
    assert body["result"]["probabilities"] == PROBABILITIES
    assert body["result"]["top_class"] == "mel"
    assert body["result"]["top_class_name"] == "Melanoma"
    assert body["result"]["melanoma_probability"] == 0.62
    assert body["result"]["risk_tier"] == "high"
    assert body["result"]["model_version"] == "effnet-test-1"
    assert body["result"]["metadata_used"] == []  # an image-only (v1) model's result
    assert body["disclaimer"] == DISCLAIMER
    assert body["disclaimer"] == "AI-assisted assessment, not a diagnosis. Consult a dermatologist."
    assert body["queue_position"] is None
    assert AuditEvent.objects.filter(
        action="analysis.view", object_id=str(done_analysis.pk)
    ).exists()


def test_failed_analysis_gives_reason_and_no_result(api, image):
    analysis = Analysis.objects.create(
        image=image, status="failed", failure_reason="No classifier installed."
    )

    body = api.get(f"/api/v1/analyses/{analysis.pk}/").json()

    assert body["status"] == "failed"
    assert body["failure_reason"] == "No classifier installed."
    assert body["result"] is None


def test_other_clinics_analysis_is_404(other_api, done_analysis):
    response = other_api.get(f"/api/v1/analyses/{done_analysis.pk}/")

    assert response.status_code == 404
    assert response.json()["message"] == "No such analysis."


def test_list_filters_by_status_and_patient(api, clinic, done_analysis, queued_analysis):
    other_patient_image = factories.DermoscopicImageFactory(
        lesion=factories.LesionFactory(patient=factories.PatientFactory(clinic=clinic))
    )
    Analysis.objects.create(image=other_patient_image)

    done = api.get("/api/v1/analyses/", {"status": "done"}).json()["results"]
    of_patient = api.get(
        "/api/v1/analyses/", {"patient": done_analysis.image.lesion.patient_id}
    ).json()["results"]

    assert [row["id"] for row in done] == [done_analysis.pk]
    assert sorted(row["id"] for row in of_patient) == sorted([done_analysis.pk, queued_analysis.pk])


def test_list_with_bad_filter_is_400(api):
    response = api.get("/api/v1/analyses/", {"status": "finished"})

    assert response.status_code == 400
    assert "status" in response.json()["errors"]


def test_list_hides_other_clinics_analyses(other_api, done_analysis):
    assert other_api.get("/api/v1/analyses/").json()["results"] == []


def test_result_says_which_recorded_fields_the_model_read(api, done_analysis):
    done_analysis.metadata_used = ["age", "site"]
    done_analysis.save(update_fields=["metadata_used"])

    body = api.get(f"/api/v1/analyses/{done_analysis.pk}/").json()

    assert body["result"]["metadata_used"] == ["age", "site"]
