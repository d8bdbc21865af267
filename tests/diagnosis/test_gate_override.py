"""A refused image on the analysis page, and a doctor's override of the image gate.

The refusal says "Not analysed: <reason>" and what to do, with nothing of a prediction. Only a
doctor may override, only with a written reason; the override is audited once, queued once
(on commit), and a second submission changes nothing. The result of an overridden analysis
carries the "Outside validated use" mark with the reason and the doctor's name.
"""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from accounts.models import AuditEvent
from diagnosis import presentation, services
from diagnosis.models import AnalysisStatus
from tests import factories

REASON = "Dermoscopic image from a new device; checked by eye, lesion in focus"


@pytest.fixture
def refused(lesion):
    return factories.NotAnalysedFactory(image=factories.DermoscopicImageFactory(lesion=lesion))


def _result_section(html: str) -> str:
    match = re.search(r'<section class="card" id="analysis-result".*?</section>', html, re.S)
    assert match, "no result section on the page"
    return match.group(0)


def _overrides() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="analysis.override_gate"))


# --- the service ---------------------------------------------------------------------------


def test_a_doctor_overrides_with_a_reason_audited_once_and_queued_once(
    doctor, refused, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as sent:
        analysis = services.analysis_override_gate(actor=doctor, analysis=refused, reason=REASON)

    assert len(sent) == 1  # the task, sent once the override is committed
    assert analysis.status == AnalysisStatus.QUEUED
    assert analysis.overridden_by == doctor
    assert analysis.overridden_by_name == doctor.get_full_name()
    assert analysis.override_reason == REASON
    assert analysis.gate_reason == "not_dermoscopic"  # kept: what the gate had found
    (event,) = _overrides()
    assert event.user == doctor
    assert event.patient_id == refused.image.lesion.patient_id
    assert event.object_id == str(refused.pk)
    assert event.detail == {"gate_reason": "not_dermoscopic"}  # the free text stays off the log


@pytest.mark.parametrize("role", ["staff", "clinic_admin"])
def test_only_a_doctor_may_override(request, refused, role):
    user = request.getfixturevalue(role)

    with pytest.raises(PermissionDenied):
        services.analysis_override_gate(actor=user, analysis=refused, reason=REASON)

    refused.refresh_from_db()
    assert refused.status == AnalysisStatus.NOT_ANALYSED and not refused.is_overridden
    assert _overrides() == []


def test_a_doctor_of_another_clinic_may_not_override(other_clinic, refused):
    elsewhere = factories.DoctorFactory(clinic=other_clinic)
    with pytest.raises(PermissionDenied):
        services.analysis_override_gate(actor=elsewhere, analysis=refused, reason=REASON)


@pytest.mark.parametrize("reason", ["", "   \n "])
def test_an_override_needs_a_written_reason(doctor, refused, reason):
    with pytest.raises(ValidationError) as error:
        services.analysis_override_gate(actor=doctor, analysis=refused, reason=reason)

    assert "reason" in error.value.message_dict
    refused.refresh_from_db()
    assert refused.status == AnalysisStatus.NOT_ANALYSED and refused.override_reason == ""
    assert _overrides() == []


def test_a_second_override_is_refused_without_queuing_or_losing_the_first(
    doctor, clinic, refused, django_capture_on_commit_callbacks
):
    colleague = factories.DoctorFactory(clinic=clinic)
    with django_capture_on_commit_callbacks() as sent:
        services.analysis_override_gate(actor=doctor, analysis=refused, reason=REASON)
        with pytest.raises(services.OverrideRefused, match="already overrode"):
            services.analysis_override_gate(actor=colleague, analysis=refused, reason="again")

    assert len(sent) == 1
    refused.refresh_from_db()
    assert refused.override_reason == REASON and refused.overridden_by == doctor
    assert len(_overrides()) == 1


@pytest.mark.parametrize("status", ["queued", "running", "failed"])
def test_only_a_refused_analysis_can_be_overridden(doctor, lesion, status):
    analysis = factories.AnalysisFactory(
        image=factories.DermoscopicImageFactory(lesion=lesion), status=status
    )
    with pytest.raises(services.OverrideRefused):
        services.analysis_override_gate(actor=doctor, analysis=analysis, reason=REASON)
    done = factories.DoneAnalysisFactory(image=analysis.image)
    with pytest.raises(services.OverrideRefused):
        services.analysis_override_gate(actor=doctor, analysis=done, reason=REASON)


def test_the_database_refuses_a_refusal_with_a_prediction(refused):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        type(refused).objects.filter(pk=refused.pk).update(probabilities={"mel": 1.0})


# --- the page ------------------------------------------------------------------------------


def test_refused_page_says_not_analysed_why_and_what_to_do_with_no_prediction(
    client, staff, refused
):
    client.force_login(staff)

    html = client.get(reverse("diagnosis:analysis", args=[refused.pk])).content.decode()

    section = _result_section(html)
    assert "Not analysed: this does not look like a dermoscopic image of a skin lesion." in section
    assert "What to do:" in section
    assert presentation.GATE_ADVICE in section
    assert "%" not in section
    page = html.replace("Melanoma Portal", "")  # the portal's name, not a class
    for name in ("Melanoma", "Basal cell carcinoma", "Melanocytic nevus", "AI suggestion"):
        assert name not in page
    assert 'class="probabilities"' not in html and "/heatmap/" not in html
    assert "Triage" not in html and "Risk:" not in html
    assert 'id="override-form"' not in html  # staff cannot override
    assert "a doctor can have it analysed anyway" in section
    upload = reverse("diagnosis:upload", args=[refused.image.lesion.patient_id])
    assert f"{upload}?lesion={refused.image.lesion_id}" in section


def test_a_doctor_sees_the_override_form(client, doctor, refused):
    client.force_login(doctor)
    html = client.get(reverse("diagnosis:analysis", args=[refused.pk])).content.decode()
    assert 'id="override-form"' in html
    assert reverse("diagnosis:analysis_override", args=[refused.pk]) in html


def test_override_form_without_a_reason_is_shown_again_with_the_error(client, doctor, refused):
    client.force_login(doctor)

    response = client.post(
        reverse("diagnosis:analysis_override", args=[refused.pk]), {"reason": " "}
    )

    assert response.status_code == 400
    assert "Say why this image should be analysed" in response.content.decode()
    refused.refresh_from_db()
    assert refused.status == AnalysisStatus.NOT_ANALYSED
    assert _overrides() == []


def test_override_form_queues_the_analysis_and_a_double_submit_changes_nothing(
    client, doctor, refused, django_capture_on_commit_callbacks
):
    client.force_login(doctor)
    url = reverse("diagnosis:analysis_override", args=[refused.pk])

    with django_capture_on_commit_callbacks() as sent:
        first = client.post(url, {"reason": REASON})
        second = client.post(url, {"reason": "a second click"}, follow=True)

    assert first.status_code == 302
    assert len(sent) == 1
    assert "already overrode the image gate" in second.content.decode()
    refused.refresh_from_db()
    assert refused.status == AnalysisStatus.QUEUED and refused.override_reason == REASON
    assert len(_overrides()) == 1


def test_staff_cannot_post_an_override(client, staff, refused):
    client.force_login(staff)
    response = client.post(
        reverse("diagnosis:analysis_override", args=[refused.pk]), {"reason": REASON}
    )
    assert response.status_code == 403
    refused.refresh_from_db()
    assert refused.status == AnalysisStatus.NOT_ANALYSED


def test_overridden_result_is_marked_outside_validated_use_with_reason_and_doctor(
    client, staff, doctor, lesion
):
    from django.utils import timezone

    analysis = factories.TriagedAnalysisFactory(
        image=factories.DermoscopicImageFactory(lesion=lesion),
        gate_reason="blurred",
        gate_message="The image is out of focus.",
        overridden_at=timezone.now(),
        overridden_by=doctor,
        overridden_by_name=doctor.get_full_name(),
        override_reason=REASON,
    )
    client.force_login(staff)

    html = client.get(reverse("diagnosis:analysis", args=[analysis.pk])).content.decode()

    section = _result_section(html)
    assert 'id="outside-validated-use"' in section
    assert "Outside validated use" in section
    assert "the image is out of focus" in section
    assert doctor.get_full_name() in section
    assert REASON in section
    assert "Basal cell carcinoma" in html  # the prediction is shown, with its mark
    dashboard = client.get(reverse("diagnosis:dashboard")).content.decode()
    assert "Outside validated use" in dashboard  # the badge in the recent list


def test_review_page_shows_the_mark_and_the_triage_to_the_reviewing_doctor(client, doctor, lesion):
    from django.utils import timezone

    analysis = factories.TriagedAnalysisFactory(
        image=factories.DermoscopicImageFactory(lesion=lesion),
        gate_reason="not_dermoscopic",
        overridden_at=timezone.now(),
        overridden_by=doctor,
        overridden_by_name="Dr Maria Gruber",
        override_reason=REASON,
    )
    client.force_login(doctor)

    html = client.get(reverse("diagnosis:review_edit", args=[analysis.pk])).content.decode()

    assert 'id="outside-validated-use"' in html and "Dr Maria Gruber" in html
    assert "Triage:" in html and "BCC 96%" in html


def test_patient_page_lists_a_refused_image_as_not_analysed(client, staff, refused):
    client.force_login(staff)

    html = client.get(
        reverse("patients:detail", args=[refused.image.lesion.patient_id])
    ).content.decode()

    assert "Not analysed" in html
    assert "This does not look like a dermoscopic image of a skin lesion" in html
