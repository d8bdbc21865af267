"""The analysis page, its live status, Retry, private image files and the dashboard."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from diagnosis.models import Analysis, AnalysisStatus
from tests import factories


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def image(lesion):
    return factories.DermoscopicImageFactory(
        lesion=lesion, thumbnail=factories.ContentFile(factories.jpeg_bytes((64, 48)), name="t.jpg")
    )


def test_done_analysis_shows_seven_classes_in_plain_words_with_bars_and_disclaimer(
    staff_client, image
):
    analysis = factories.DoneAnalysisFactory(image=image)

    html = staff_client.get(reverse("diagnosis:analysis", args=[analysis.pk])).content.decode()

    for name in (
        "Actinic keratosis",
        "Basal cell carcinoma",
        "Benign keratosis",
        "Dermatofibroma",
        "Melanoma",
        "Melanocytic nevus",
        "Vascular lesion",
    ):
        assert name in html
    assert html.count('class="bar"') == 7
    assert "71.0%" in html  # melanoma probability
    assert 'id="risk-tier" class="tier-high">High' in html
    assert "ham10000-test-v1" in html
    assert "AI-assisted assessment, not a diagnosis. Consult a dermatologist." in html
    assert reverse("diagnosis:heatmap", args=[analysis.pk, "top"]) in html
    assert reverse("diagnosis:image", args=[image.pk]) in html


def test_probability_rows_are_ordered_most_likely_first(staff_client, image):
    analysis = factories.DoneAnalysisFactory(image=image)
    html = staff_client.get(reverse("diagnosis:analysis", args=[analysis.pk])).content.decode()
    assert (
        html.index('data-class="mel"')
        < html.index('data-class="nv"')
        < html.index('data-class="df"')
    )


def test_queued_analysis_page_shows_queue_position_and_polls_without_a_result(
    staff_client, image, lesion
):
    factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
    analysis = factories.AnalysisFactory(image=image)

    html = staff_client.get(reverse("diagnosis:analysis", args=[analysis.pk])).content.decode()

    assert 'position <span id="queue-position">2</span>' in html
    assert "js/analysis_status.js" in html
    assert reverse("diagnosis:analysis_status", args=[analysis.pk]) in html
    assert "probabilities" not in html and "disclaimer" not in html


def test_status_endpoint_reports_state_and_position_and_is_not_cached(staff_client, image):
    analysis = factories.AnalysisFactory(image=image)

    response = staff_client.get(reverse("diagnosis:analysis_status", args=[analysis.pk]))

    assert response.json() == {
        "id": analysis.pk,
        "status": "queued",
        "status_display": "Queued",
        "queue_position": 1,
        "failure_reason": "",
        "held": 0.0,
    }
    assert "no-cache" in response["Cache-Control"]


def test_failed_analysis_shows_reason_and_retry_button(staff_client, image):
    analysis = factories.AnalysisFactory(
        image=image, status=AnalysisStatus.FAILED, failure_reason="No classifier installed: x"
    )
    html = staff_client.get(reverse("diagnosis:analysis", args=[analysis.pk])).content.decode()
    assert "No classifier installed: x" in html
    assert reverse("diagnosis:analysis_retry", args=[analysis.pk]) in html


def test_retry_queues_a_failed_analysis_again(
    staff_client, image, django_capture_on_commit_callbacks, monkeypatch
):
    sent: list[int] = []
    monkeypatch.setattr(
        "diagnosis.tasks.analyse_image.apply_async",
        lambda args=(), kwargs=None, **kw: sent.append(args[0]),
    )
    analysis = factories.AnalysisFactory(
        image=image, status=AnalysisStatus.FAILED, failure_reason="boom"
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(reverse("diagnosis:analysis_retry", args=[analysis.pk]))

    analysis.refresh_from_db()
    assert response.status_code == 302
    assert analysis.status == AnalysisStatus.QUEUED and analysis.failure_reason == ""
    assert sent == [analysis.pk]
    assert AuditEvent.objects.filter(action="analysis.retry", object_id=str(analysis.pk)).exists()


def test_retry_of_a_done_analysis_changes_nothing(staff_client, image):
    analysis = factories.DoneAnalysisFactory(image=image)
    staff_client.post(reverse("diagnosis:analysis_retry", args=[analysis.pk]))
    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.DONE


def test_retry_by_get_is_refused(staff_client, image):
    analysis = factories.AnalysisFactory(image=image, status=AnalysisStatus.FAILED)
    response = staff_client.get(reverse("diagnosis:analysis_retry", args=[analysis.pk]))
    assert response.status_code == 405


def test_image_is_served_privately_with_no_store_and_audited(staff_client, image):
    response = staff_client.get(reverse("diagnosis:image", args=[image.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert "no-store" in response["Cache-Control"]
    assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"
    assert AuditEvent.objects.filter(action="image.view", object_id=str(image.pk)).count() == 1


def test_image_files_have_no_public_url(settings, image):
    assert settings.MEDIA_URL in (None, "")
    assert not str(settings.MEDIA_ROOT).startswith(str(settings.STATIC_ROOT))


def test_deleted_original_is_404_not_a_crash(staff_client, image):
    image.file.delete(save=True)
    response = staff_client.get(reverse("diagnosis:image", args=[image.pk]))
    assert response.status_code == 404


def test_viewing_an_analysis_is_audited(staff_client, staff, image):
    analysis = factories.DoneAnalysisFactory(image=image)
    staff_client.get(reverse("diagnosis:analysis", args=[analysis.pk]))
    event = AuditEvent.objects.get(action="analysis.view")
    assert event.user == staff and event.patient_id == image.lesion.patient_id


def test_dashboard_counts_only_this_clinic(staff_client, clinic, other_clinic, image):
    factories.AnalysisFactory(image=image)
    factories.AnalysisFactory(image=image, status=AnalysisStatus.FAILED)
    factories.DoneAnalysisFactory(image=image)
    elsewhere = factories.DermoscopicImageFactory(
        lesion=factories.LesionFactory(patient=factories.PatientFactory(clinic=other_clinic))
    )
    factories.AnalysisFactory(image=elsewhere)
    factories.DoneAnalysisFactory(image=elsewhere)

    response = staff_client.get(reverse("diagnosis:dashboard"))

    assert response.context["counts"] == {
        "patients": 1,
        "analyses_today": 3,
        "queued": 1,
        "failed": 1,
        "high_risk_awaiting_review": 1,
        "not_routine_awaiting_review": 1,
    }
    assert len(response.context["queue"]) == 1
    assert len(response.context["recent"]) == 3
    assert elsewhere.lesion.patient.mrn not in response.content.decode()


def test_dashboard_queue_is_oldest_first(staff_client, image):
    newer = factories.AnalysisFactory(image=image)
    older = factories.AnalysisFactory(image=image)
    Analysis.objects.filter(pk=older.pk).update(
        queued_at=timezone.now() - datetime.timedelta(minutes=5)
    )
    queue = staff_client.get(reverse("diagnosis:dashboard")).context["queue"]
    assert [a.pk for a in queue] == [older.pk, newer.pk]
    assert [a.position for a in queue] == [1, 2]


def test_lesion_create_records_site_and_goes_to_upload(staff_client, patient):
    response = staff_client.post(
        reverse("diagnosis:lesion_create", args=[patient.pk]),
        {"anatomic_site": "upper extremity", "label": "left forearm"},
    )
    lesion = patient.lesions.get()
    assert lesion.anatomic_site == "upper extremity" and lesion.label == "left forearm"
    assert response["Location"].endswith(f"?lesion={lesion.pk}")
    assert AuditEvent.objects.filter(action="lesion.create").exists()


def test_lesion_with_unknown_site_is_refused_with_a_message(staff_client, patient):
    response = staff_client.post(
        reverse("diagnosis:lesion_create", args=[patient.pk]), {"anatomic_site": "elbow"}
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not patient.lesions.exists()
