"""Histopathology results and the agreement of the AI and the doctors with them."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from diagnosis.models import Histopathology
from diagnosis.selectors.histopathology import (
    HistologyCase,
    agreement_summary,
    histology_cases,
)
from diagnosis.services.histopathology import histopathology_record
from tests import factories


def test_agreement_numbers_on_a_constructed_case_mix():
    cases = [
        # Three melanomas: the AI names one, puts two in the high tier and all three at least
        # moderate; doctors reviewed two, diagnosed one as melanoma, excised both.
        HistologyCase(1, "mel", "mel", "high", "mel", "excise"),
        HistologyCase(2, "mel", "nv", "high", "nv", "refer_urgently"),
        HistologyCase(3, "mel", "nv", "moderate"),
        # Two benign naevi: the AI is right on one; the one reviewed, the doctor is right.
        HistologyCase(4, "nv", "nv", "low", "nv", "reassure"),
        HistologyCase(5, "nv", "mel", "high"),
        HistologyCase(6, "bcc", "bcc", "moderate", "akiec", "excise"),
    ]

    summary = agreement_summary(cases)

    assert (summary.cases, summary.reviewed_cases, summary.melanomas) == (6, 4, 3)
    assert (summary.ai_agreement.count, summary.ai_agreement.total) == (3, 6)
    assert summary.ai_agreement.percent == 50.0
    assert (summary.doctor_agreement.count, summary.doctor_agreement.total) == (2, 4)
    assert (
        summary.ai_mel_sensitivity_top_class.count,
        summary.ai_mel_sensitivity_top_class.total,
    ) == (1, 3)
    assert summary.ai_mel_sensitivity_top_class.percent == 33.3
    assert summary.ai_mel_sensitivity_high_tier.count == 2
    assert summary.ai_mel_sensitivity_moderate_or_high.count == 3
    assert summary.reviewed_melanomas == 2
    assert (
        summary.doctor_mel_sensitivity_diagnosis.count,
        summary.doctor_mel_sensitivity_diagnosis.total,
    ) == (1, 2)
    assert summary.doctor_mel_sensitivity_action.count == 2


def test_no_cases_gives_no_percentages():
    summary = agreement_summary([])

    assert summary.cases == 0
    assert summary.ai_agreement.percent is None


def test_cases_pair_each_lesion_with_its_newest_analysis_and_signed_review(
    doctor, patient, other_clinic
):
    lesion = factories.LesionFactory(patient=patient)
    older = factories.DoneAnalysisFactory(
        image=factories.DermoscopicImageFactory(lesion=lesion), top_class="bkl"
    )
    newer = factories.DoneAnalysisFactory(
        image=factories.DermoscopicImageFactory(lesion=lesion), top_class="mel"
    )
    older.queued_at = timezone.now() - datetime.timedelta(days=3)
    older.save()
    factories.ReviewFactory(
        analysis=newer,
        author=doctor,
        diagnosis="nv",
        signed_at=timezone.now(),
        signed_by_name="Dr A",
    )
    factories.HistopathologyFactory(lesion=lesion, diagnosis="mel")
    # A lesion with histology but no finished analysis, and another clinic's case: not counted.
    no_result = factories.LesionFactory(patient=patient)
    factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=no_result))
    factories.HistopathologyFactory(lesion=no_result)
    elsewhere = factories.LesionFactory(patient=factories.PatientFactory(clinic=other_clinic))
    factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=elsewhere))
    factories.HistopathologyFactory(lesion=elsewhere)

    cases = histology_cases(user=doctor)

    assert cases == [HistologyCase(lesion.pk, "mel", "mel", "high", "nv", "excise")]


def test_doctor_records_and_corrects_a_histology_result(doctor, lesion):
    histopathology_record(
        actor=doctor,
        lesion=lesion,
        diagnosis="nv",
        reported_on=datetime.date(2025, 2, 1),
        lab_reference="H-25-001",
    )
    histopathology_record(
        actor=doctor,
        lesion=lesion,
        diagnosis="mel",
        reported_on=datetime.date(2025, 2, 1),
        lab_reference="H-25-001",
    )

    result = Histopathology.objects.get()
    assert result.diagnosis == "mel"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"histopathology.create", "histopathology.update"} <= actions


def test_staff_cannot_record_histology(staff, lesion):
    with pytest.raises(PermissionDenied):
        histopathology_record(
            actor=staff,
            lesion=lesion,
            diagnosis="mel",
            reported_on=datetime.date(2025, 2, 1),
            lab_reference="H-1",
        )


def test_histology_in_the_future_or_unnamed_other_is_refused(doctor, lesion):
    with pytest.raises(ValidationError) as raised:
        histopathology_record(
            actor=doctor,
            lesion=lesion,
            diagnosis="other",
            reported_on=timezone.localdate() + datetime.timedelta(days=2),
            lab_reference="H-1",
        )

    assert set(raised.value.message_dict) == {"diagnosis_other", "reported_on"}
    assert not Histopathology.objects.exists()


def test_histology_form_keeps_input_and_names_missing_fields(client, doctor, lesion):
    client.force_login(doctor)

    response = client.post(
        reverse("diagnosis:histopathology_edit", args=[lesion.pk]),
        {"diagnosis": "mel", "lab_reference": "LAB-77"},
    )

    body = response.content.decode()
    assert response.status_code == 400
    assert "Give the date of the histology report." in body
    assert 'value="LAB-77"' in body
    assert not Histopathology.objects.exists()


def test_agreement_page_for_doctors_and_admins_only(client, doctor, clinic_admin, staff, lesion):
    factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
    factories.HistopathologyFactory(lesion=lesion, diagnosis="mel")
    url = reverse("diagnosis:histopathology_agreement")

    client.force_login(staff)
    assert client.get(url).status_code == 403
    for user in (doctor, clinic_admin):
        client.force_login(user)
        body = client.get(url).content.decode()
        assert '<td id="ai-agreement">1 of 1 (100.0%)</td>' in body
        assert '<td id="cases">1</td>' in body


def test_other_clinic_doctor_gets_404_for_a_lesion(client, other_clinic, lesion):
    client.force_login(factories.DoctorFactory(clinic=other_clinic))

    response = client.get(reverse("diagnosis:histopathology_edit", args=[lesion.pk]))

    assert response.status_code == 404
