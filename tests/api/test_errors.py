"""The error contract: JSON, one shape, a message, the right status."""

from __future__ import annotations

import pytest
from PIL import Image, UnidentifiedImageError

from diagnosis.image_validation import ImageRejected, image_rejection_status


def rejected(message: str, cause: Exception | None = None) -> ImageRejected:
    try:
        raise ImageRejected(message) from cause
    except ImageRejected as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (rejected("The file is 30.0 MB; the limit is 20 MB."), 413),
        (rejected("The image has too many pixels; the limit is 50 megapixels."), 413),
        (rejected("x", Image.DecompressionBombError("bomb")), 413),
        (rejected("This file is not a JPEG or PNG image", UnidentifiedImageError("?")), 415),
        (rejected("Only JPEG and PNG images are accepted; this file is TIFF."), 415),
        (rejected("Animated images are not accepted; upload a single photo."), 415),
        (rejected("The file is empty (0 bytes)."), 400),
        (rejected("The image is only 10x10 pixels; at least 32x32 needed."), 400),
    ],
)
def test_image_rejections_map_to_status(exc, status):
    assert image_rejection_status(exc) == status


def test_unknown_id_is_404_json(api):
    response = api.get("/api/v1/lesions/999999/")

    assert response.status_code == 404
    assert response.json() == {"status": 404, "code": "not_found", "message": "No such lesion."}


def test_huge_id_is_404_not_a_crash(api):
    assert api.get("/api/v1/patients/99999999999999999999999/").status_code == 404


def test_method_not_allowed_is_405_json(api, patient):
    response = api.delete(f"/api/v1/patients/{patient.pk}/")

    assert response.status_code == 405
    assert response.json()["message"] == 'Method "DELETE" not allowed.'


def test_malformed_json_is_400_with_message(api):
    response = api.generic(
        "POST", "/api/v1/patients/", "{not json", content_type="application/json"
    )

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["message"]


def test_staff_of_no_clinic_sees_nothing(db):
    from rest_framework.test import APIClient

    from accounts.models import User

    operator = User.objects.create_user("ops@portal.example", "x" * 12, is_staff=True)
    client = APIClient()
    client.force_authenticate(operator)

    assert client.get("/api/v1/patients/").json()["results"] == []
    response = client.post(
        "/api/v1/patients/",
        {
            "mrn": "1",
            "first_name": "a",
            "last_name": "b",
            "date_of_birth": "1990-01-01",
            "sex": "male",
        },
        format="json",
    )
    assert response.status_code == 403
    assert response.json()["message"] == "Only members of a clinic can do this."


@pytest.mark.parametrize("bad_id", ["abc", "0", "-1", "1.5", "٣", "99999999999999999999999"])
def test_malformed_id_is_json_404_not_an_html_page(api, bad_id):
    response = api.get(f"/api/v1/analyses/{bad_id}/")

    assert response.status_code == 404
    assert response.json()["message"] == "No such analysis."
