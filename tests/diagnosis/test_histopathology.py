"""Histopathology results and the agreement of the AI and the doctors with them."""

from __future__ import annotations

import datetime
import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from diagnosis.models import Histopathology
from diagnosis.selectors.histopathology import (
    HistologyCase,
    agreement_summary,
    case_list,
    histology_cases,
)
from diagnosis.services.histopathology import histopathology_record
from tests import factories


def _case(pk, histology, ai, tier, doctor=None, management=None) -> HistologyCase:
    return HistologyCase(pk, pk, histology, ai, tier, doctor, management)


CASE_MIX = [
    # Three melanomas: two reviewed (the AI names one, puts both in the high tier; the doctor
    # diagnoses one as melanoma and acts on both), one not reviewed.
    _case(1, "mel", "mel", "high", "mel", "excise"),
    _case(2, "mel", "nv", "high", "nv", "refer_urgently"),
    _case(3, "mel", "nv", "moderate"),
    # Two benign naevi, one reviewed; a BCC the doctor called Bowen's disease.
    _case(4, "nv", "nv", "low", "nv", "reassure"),
    _case(5, "nv", "mel", "high"),
    _case(6, "bcc", "bcc", "moderate", "akiec", "excise"),
]


def test_agreement_counts_the_reviewed_analyses_for_ai_and_doctors_alike():
    summary = agreement_summary(CASE_MIX)

    assert (summary.cases, summary.unreviewed, summary.melanomas) == (4, 2, 2)
    # The AI is judged on the same four reviewed cases as the doctors, not on all six.
    assert (summary.ai_agreement.count, summary.ai_agreement.total) == (3, 4)
    assert summary.ai_agreement.percent == 75.0
    assert (summary.doctor_agreement.count, summary.doctor_agreement.total) == (2, 4)
    assert (
        summary.ai_mel_sensitivity_top_class.count,
        summary.ai_mel_sensitivity_top_class.total,
    ) == (1, 2)
    assert summary.ai_mel_sensitivity_high_tier.count == 2
    assert summary.ai_mel_sensitivity_moderate_or_high.count == 2
    assert (
        summary.doctor_mel_sensitivity_diagnosis.count,
        summary.doctor_mel_sensitivity_diagnosis.total,
    ) == (1, 2)
    assert summary.doctor_mel_sensitivity_action.count == 2


def test_every_number_is_the_size_of_the_list_it_links_to():
    summary = agreement_summary(CASE_MIX)
    rates = [
        summary.ai_agreement,
        summary.doctor_agreement,
        summary.ai_mel_sensitivity_top_class,
        summary.ai_mel_sensitivity_high_tier,
        summary.ai_mel_sensitivity_moderate_or_high,
        summary.doctor_mel_sensitivity_diagnosis,
        summary.doctor_mel_sensitivity_action,
    ]

    for rate in rates:
        assert len(case_list(CASE_MIX, rate.cases)) == rate.count, rate
        assert len(case_list(CASE_MIX, rate.of)) == rate.total, rate
        # What a number counts lies inside what it is counted out of.
        assert set(case_list(CASE_MIX, rate.cases)) <= set(case_list(CASE_MIX, rate.of))
    assert [c.analysis_id for c in case_list(CASE_MIX, "ai_agreement")] == [1, 4, 6]
    assert [c.analysis_id for c in case_list(CASE_MIX, "doctor_mel_diagnosis")] == [1]
    assert [c.analysis_id for c in case_list(CASE_MIX, "unreviewed")] == [3, 5]


def test_no_cases_gives_no_percentages():
    summary = agreement_summary([])

    assert summary.cases == 0
    assert summary.ai_agreement.percent is None


def _signed(analysis, doctor, **fields):
    return factories.ReviewFactory(
        analysis=analysis,
        author=doctor,
        signed_at=timezone.now(),
        signed_by=doctor,
        signed_by_name="Dr A",
        **fields,
    )


def test_each_reviewed_analysis_is_a_case_even_when_a_newer_one_is_not_reviewed(
    doctor, patient, other_clinic
):
    lesion = factories.LesionFactory(patient=patient)
    older = factories.DoneAnalysisFactory(
        image=factories.DermoscopicImageFactory(lesion=lesion), top_class="mel"
    )
    newer = factories.DoneAnalysisFactory(
        image=factories.DermoscopicImageFactory(lesion=lesion), top_class="bkl"
    )
    older.queued_at = timezone.now() - datetime.timedelta(days=3)
    older.save()
    _signed(older, doctor, agrees_with_ai=False, diagnosis="nv")
    factories.HistopathologyFactory(lesion=lesion, diagnosis="mel")
    # A lesion with histology but no finished analysis, and another clinic's case: no case.
    no_result = factories.LesionFactory(patient=patient)
    factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=no_result))
    factories.HistopathologyFactory(lesion=no_result)
    elsewhere = factories.LesionFactory(patient=factories.PatientFactory(clinic=other_clinic))
    factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=elsewhere))
    factories.HistopathologyFactory(lesion=elsewhere)

    cases = histology_cases(user=doctor)
    summary = agreement_summary(cases)

    assert cases == [
        HistologyCase(newer.pk, lesion.pk, "mel", "bkl", "high"),
        HistologyCase(older.pk, lesion.pk, "mel", "mel", "high", "nv", "excise"),
    ]
    # The doctor's signed review of the older analysis counts; the newer one waits apart.
    assert (summary.cases, summary.unreviewed) == (1, 1)
    assert (summary.doctor_agreement.count, summary.doctor_agreement.total) == (0, 1)
    assert (summary.ai_agreement.count, summary.ai_agreement.total) == (1, 1)


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
    analysis = factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
    _signed(analysis, doctor, diagnosis="mel")
    factories.HistopathologyFactory(lesion=lesion, diagnosis="mel")
    url = reverse("diagnosis:histopathology_agreement")

    client.force_login(staff)
    assert client.get(url).status_code == 403
    assert client.get(reverse("diagnosis:histopathology_cases")).status_code == 403
    for user in (doctor, clinic_admin):
        client.force_login(user)
        body = client.get(url).content.decode()
        assert re.search(r'<td id="ai-agreement"><a [^>]*>1</a> of <a [^>]*>1</a> \(100.0%\)', body)
        assert re.search(r'<td id="cases" colspan="2"><a [^>]*>1</a>', body)


def _link(body: str, cell_id: str, number: int) -> str:
    """The href of the `number`th link (0: the count, 1: the total) in the page's cell."""
    cell = re.search(rf'id="{cell_id}"[^>]*>(.*?)</(?:td|span|p)>', body, re.S).group(1)
    return re.findall(r'href="([^"]+)"', cell)[number].replace("&amp;", "&")


def test_each_agreement_number_links_to_the_cases_behind_it(client, doctor, clinic, other_clinic):
    def case(last_name, histology, ai, diagnosis=None, management="excise"):
        patient = factories.PatientFactory(clinic=clinic, last_name=last_name)
        lesion = factories.LesionFactory(patient=patient)
        analysis = factories.DoneAnalysisFactory(
            image=factories.DermoscopicImageFactory(lesion=lesion), top_class=ai
        )
        if diagnosis:
            _signed(
                analysis,
                doctor,
                agrees_with_ai=diagnosis == ai,
                diagnosis=diagnosis,
                management=management,
            )
        factories.HistopathologyFactory(lesion=lesion, diagnosis=histology)
        return patient

    caught = case("Caught", "mel", ai="mel", diagnosis="mel")
    missed = case("Missed", "mel", ai="nv", diagnosis="nv", management="reassure")
    benign = case("Benign", "nv", ai="nv", diagnosis="nv", management="reassure")
    waiting = case("Waiting", "mel", ai="mel")
    stranger = factories.PatientFactory(clinic=other_clinic, last_name="Stranger")
    elsewhere = factories.LesionFactory(patient=stranger)
    _signed(
        factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=elsewhere)),
        factories.DoctorFactory(clinic=other_clinic),
    )
    factories.HistopathologyFactory(lesion=elsewhere, diagnosis="mel")
    client.force_login(doctor)
    page = client.get(reverse("diagnosis:histopathology_agreement")).content.decode()

    def names(href: str) -> set[str]:
        response = client.get(href)
        assert response.status_code == 200
        body = response.content.decode()
        everyone = [caught, missed, benign, waiting, stranger]
        return {p.last_name for p in everyone if p.mrn in body}

    assert names(_link(page, "ai-agreement", 0)) == {"Caught", "Benign"}
    assert names(_link(page, "ai-agreement", 1)) == {"Caught", "Missed", "Benign"}
    assert names(_link(page, "doctor-mel-diagnosis", 0)) == {"Caught"}
    assert names(_link(page, "doctor-mel-diagnosis", 1)) == {"Caught", "Missed"}
    assert names(_link(page, "doctor-mel-action", 0)) == {"Caught"}
    assert names(_link(page, "unreviewed", 0)) == {"Waiting"}
    views = AuditEvent.objects.filter(action="histopathology.cases_view", user=doctor)
    assert views.count() == 6


def test_an_unknown_list_of_cases_is_refused_in_words(client, doctor):
    client.force_login(doctor)

    response = client.get(reverse("diagnosis:histopathology_cases") + "?list=nonsense")

    assert response.status_code == 400
    assert "There is no list of cases called “nonsense”" in response.content.decode()


def test_other_clinic_doctor_gets_404_for_a_lesion(client, other_clinic, lesion):
    client.force_login(factories.DoctorFactory(clinic=other_clinic))

    response = client.get(reverse("diagnosis:histopathology_edit", args=[lesion.pk]))

    assert response.status_code == 404
