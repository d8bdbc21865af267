"""Reviews through the API (read only): signed versions only, clinic-scoped."""

from __future__ import annotations

from django.utils import timezone

from diagnosis.models import Review


def signed_review(analysis, doctor, **fields) -> Review:
    values = {
        "analysis": analysis,
        "author": doctor,
        "agrees_with_ai": True,
        "diagnosis": "mel",
        "management": "excise",
        "signed_at": timezone.now(),
        "signed_by": doctor,
        "signed_by_name": doctor.full_name,
    }
    values.update(fields)
    return Review.objects.create(**values)


def test_signed_review_is_listed_with_its_signature(api, doctor, done_analysis):
    review = signed_review(done_analysis, doctor)

    response = api.get("/api/v1/reviews/", {"analysis": done_analysis.pk})

    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["id"] == review.pk
    assert row["diagnosis_label"] == "Melanoma"
    assert row["signed_by"] == doctor.full_name
    assert row["is_current"] is True


def test_draft_review_is_not_shown(api, doctor, done_analysis):
    draft = Review.objects.create(
        analysis=done_analysis,
        author=doctor,
        agrees_with_ai=False,
        diagnosis="nv",
        management="reassure",
    )

    assert api.get("/api/v1/reviews/").json()["results"] == []
    assert api.get(f"/api/v1/reviews/{draft.pk}/").status_code == 404


def test_superseded_version_is_marked_not_current(api, doctor, done_analysis):
    first = signed_review(done_analysis, doctor)
    second = signed_review(
        done_analysis, doctor, version=2, supersedes=first, amendment_reason="histology"
    )

    rows = {row["id"]: row for row in api.get("/api/v1/reviews/").json()["results"]}

    assert rows[first.pk]["is_current"] is False
    assert rows[second.pk]["is_current"] is True


def test_other_clinics_review_is_404(other_api, doctor, done_analysis):
    review = signed_review(done_analysis, doctor)

    assert other_api.get(f"/api/v1/reviews/{review.pk}/").status_code == 404
    assert other_api.get("/api/v1/reviews/").json()["results"] == []
