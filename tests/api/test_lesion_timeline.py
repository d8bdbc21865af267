"""A lesion's timeline and its new fields through the API."""

from __future__ import annotations

from accounts.models import AuditEvent
from diagnosis import services
from tests.diagnosis.lesion_world import at, result, sign


def test_lesion_is_recorded_with_side_size_and_region(api, patient):
    response = api.post(
        "/api/v1/lesions/",
        {
            "patient": patient.pk,
            "anatomic_site": "upper extremity",
            "laterality": "left",
            "size_mm": "4.5",
            "body_map_region": "front-arm-left",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["laterality"], body["size_mm"], body["body_map_region"]) == (
        "left",
        "4.5",
        "front-arm-left",
    )


def test_a_region_off_the_site_is_refused_with_words(api, patient):
    response = api.post(
        "/api/v1/lesions/",
        {"patient": patient.pk, "anatomic_site": "back", "body_map_region": "front-face"},
        format="json",
    )

    assert response.status_code == 400
    assert "The body map shows face" in response.json()["message"]


def test_timeline_lists_images_newest_first_with_results_and_the_change(api, staff, doctor, lesion):
    old = result(lesion, "routine", when=at(40))
    new = result(lesion, "urgent", when=at(2, 9))
    same_visit = result(lesion, "soon", when=at(2, 8))
    sign(old, doctor)
    services.review_sign_covering(
        actor=doctor,
        analysis=new,
        cover=[same_visit],
        agrees_with_ai=True,
        diagnosis="mel",
        management="excise",
    )

    response = api.get(f"/api/v1/lesions/{lesion.pk}/timeline/")

    assert response.status_code == 200, response.content
    body = response.json()
    images = body["images"]
    assert [i["image"] for i in images] == [new.image_id, same_visit.image_id, old.image_id]
    assert images[0]["level"] == "urgent" and images[0]["melanoma_probability"] == 0.71
    assert images[0]["triage"]["reason"] == "Melanoma 71%"
    assert images[1]["covered_by_review"] == images[0]["signed_review"] is not None
    assert images[2]["review_state"].startswith("Signed by")
    change = body["changed_since_last_visit"]
    assert (change["before"], change["after"], change["worse"]) == ("routine", "urgent", True)
    assert body["lesion"]["id"] == lesion.pk
    assert (
        AuditEvent.objects.filter(
            action="lesion.view", user=staff, object_id=str(lesion.pk)
        ).count()
        == 1
    )


def test_timeline_of_another_clinics_lesion_is_404(other_api, lesion):
    result(lesion, "routine")
    assert other_api.get(f"/api/v1/lesions/{lesion.pk}/timeline/").status_code == 404
