"""Referrals: opened by a doctor's signed decision to refer, listed open / overdue / closed,
closed with an outcome or the histology result; who may do what, and the audit trail."""

from __future__ import annotations

import datetime
import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from diagnosis.models import Referral, Review
from diagnosis.selectors.referral import overdue_referral_count, referral_list
from diagnosis.services.referral import ReferralAlreadyClosed, referral_close, referral_open
from diagnosis.services.review import review_amend, review_save, review_sign
from patients.services.rights import patient_erase
from tests import factories

DESTINATION = "Plastic surgery, St Mary's"
REFER = {
    "agrees_with_ai": True,
    "diagnosis": "mel",
    "management": "refer_urgently",
    "referral_to": DESTINATION,
}
# The same decision as the review page posts it.
REFER_FORM = REFER | {"agrees_with_ai": "yes", "action": "sign"}


@pytest.fixture
def analysis(lesion):
    return factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))


def _actions(prefix: str = "") -> list[str]:
    return list(
        AuditEvent.objects.filter(action__startswith=prefix)
        .order_by("id")
        .values_list("action", flat=True)
    )


def _days_later(days: int) -> datetime.date:
    return timezone.localdate() + datetime.timedelta(days=days)


def _pass_due_date(referral: Referral, days: int = 1) -> None:
    """Time passes: the referral's due date is now `days` behind us."""
    Referral.objects.filter(pk=referral.pk).update(due_on=_days_later(-days))


# --- opening -------------------------------------------------------------------------------


def test_signing_refer_urgently_opens_an_urgent_referral_due_in_two_weeks(doctor, analysis):
    review = review_save(actor=doctor, analysis=analysis, sign=True, **REFER)

    referral = Referral.objects.get()
    assert referral.review == review
    assert (referral.analysis, referral.lesion) == (analysis, analysis.image.lesion)
    assert referral.destination == DESTINATION
    assert referral.urgency == "urgent"
    assert referral.due_on == _days_later(14)
    assert referral.status == "open"
    assert referral.created_by == doctor
    assert _actions("re") == ["review.create", "review.sign", "referral.create"]


def test_refer_soon_is_due_by_the_clinics_own_policy(clinic, doctor, analysis):
    clinic.referral_days_soon = 30
    clinic.save()

    review_save(
        actor=doctor, analysis=analysis, sign=True, **(REFER | {"management": "refer_soon"})
    )

    referral = Referral.objects.get()
    assert (referral.urgency, referral.due_on) == ("soon", _days_later(30))


def test_a_draft_that_refers_opens_nothing_until_it_is_signed(doctor, analysis):
    draft = review_save(actor=doctor, analysis=analysis, **REFER)
    assert not Referral.objects.exists()

    review_sign(actor=doctor, review=draft)

    assert Referral.objects.get().review == draft


def test_other_decisions_open_no_referral(doctor, analysis):
    review_save(
        actor=doctor,
        analysis=analysis,
        sign=True,
        **(REFER | {"management": "excise", "referral_to": "ignored"}),
    )

    assert not Referral.objects.exists()
    assert Review.objects.get().referral_to == ""  # a destination only goes with a referral


def test_refer_without_a_destination_is_refused_and_nothing_is_signed(doctor, analysis):
    with pytest.raises(ValidationError) as raised:
        review_save(actor=doctor, analysis=analysis, sign=True, **(REFER | {"referral_to": "   "}))

    assert raised.value.message_dict["referral_to"] == [
        "Say where the patient is referred, e.g. 'Plastic surgery, St Mary's'."
    ]
    assert not Review.objects.exists() and not Referral.objects.exists()


def test_an_amendment_that_still_refers_keeps_the_one_open_referral(doctor, analysis):
    review_save(actor=doctor, analysis=analysis, sign=True, **REFER)

    review_amend(
        actor=doctor,
        analysis=analysis,
        amendment_reason="Lesion measured again",
        sign=True,
        notes="Now 8 mm.",
    )
    referral_open(actor=doctor, review=Review.objects.get(version=2))

    assert Referral.objects.count() == 1
    assert _actions("referral.") == ["referral.create"]


def test_an_amendment_that_stops_referring_leaves_the_referral_for_a_doctor_to_close(
    doctor, analysis
):
    review_save(actor=doctor, analysis=analysis, sign=True, **REFER)

    review_amend(
        actor=doctor,
        analysis=analysis,
        amendment_reason="Seen again: benign",
        sign=True,
        agrees_with_ai=False,
        diagnosis="nv",
        management="reassure",
    )

    assert Referral.objects.get().status == "open"


def test_only_a_doctor_of_the_clinic_opens_a_referral(staff, doctor, other_clinic, analysis):
    review = factories.ReviewFactory(
        analysis=analysis,
        author=doctor,
        management="refer_urgently",
        referral_to=DESTINATION,
        signed_at=timezone.now(),
        signed_by=doctor,
        signed_by_name="Dr A",
    )

    with pytest.raises(PermissionDenied):
        referral_open(actor=staff, review=review)
    with pytest.raises(PermissionDenied):
        referral_open(actor=factories.DoctorFactory(clinic=other_clinic), review=review)
    assert not Referral.objects.exists()


# --- overdue and the lists -----------------------------------------------------------------


def test_overdue_is_open_and_past_the_due_date_on_the_day_of_the_read(doctor, analysis):
    review_save(actor=doctor, analysis=analysis, sign=True, **REFER)
    due = Referral.objects.get().due_on

    on_the_day = referral_list(user=doctor, status="overdue", today=due)
    the_day_after = referral_list(user=doctor, status="overdue", today=due + datetime.timedelta(1))

    assert not on_the_day.exists()
    assert [r.is_overdue for r in the_day_after] == [True]
    assert overdue_referral_count(user=doctor, today=due + datetime.timedelta(1)) == 1
    assert referral_list(user=doctor, status="open", today=due + datetime.timedelta(1)).count() == 1


def test_lists_are_scoped_to_the_clinic_and_sorted_by_due_date(doctor, clinic, other_clinic):
    def referral(clinic, due_in):
        patient = factories.PatientFactory(clinic=clinic)
        analysis = factories.DoneAnalysisFactory(
            image=factories.DermoscopicImageFactory(lesion=factories.LesionFactory(patient=patient))
        )
        return factories.ReferralFactory(analysis=analysis, due_on=_days_later(due_in))

    later, sooner, overdue = referral(clinic, 30), referral(clinic, 3), referral(clinic, -2)
    referral(other_clinic, -5)

    assert list(referral_list(user=doctor, status="open")) == [overdue, sooner, later]
    assert list(referral_list(user=doctor, status="overdue")) == [overdue]
    assert overdue_referral_count(user=doctor) == 1


# --- closing -------------------------------------------------------------------------------


@pytest.fixture
def referral(doctor, analysis) -> Referral:
    review_save(actor=doctor, analysis=analysis, sign=True, **REFER)
    return Referral.objects.get()


def test_closing_needs_an_outcome_or_the_histology_result(doctor, referral):
    with pytest.raises(ValidationError) as raised:
        referral_close(actor=doctor, referral=referral, outcome="  ")
    assert "outcome" in raised.value.message_dict
    with pytest.raises(ValidationError) as raised:
        referral_close(actor=doctor, referral=referral, with_histopathology=True)
    assert raised.value.message_dict["with_histopathology"] == [
        "No histology result is recorded for this lesion yet: record it first, or write the "
        "outcome."
    ]
    referral.refresh_from_db()
    assert referral.status == "open"
    assert "referral.close" not in _actions()


def test_closing_with_the_histology_result_links_it(doctor, referral):
    result = factories.HistopathologyFactory(lesion=referral.lesion, diagnosis="mel")

    referral_close(actor=doctor, referral=referral, with_histopathology=True)

    referral.refresh_from_db()
    assert referral.status == "closed"
    assert referral.histopathology == result and referral.outcome == ""
    assert referral.closed_by == doctor and referral.closed_by_name == doctor.full_name


def test_closing_twice_changes_nothing_the_second_time(doctor, referral):
    referral_close(actor=doctor, referral=referral, outcome="Excised 3 May.")

    with pytest.raises(ReferralAlreadyClosed, match="already closed by"):
        referral_close(actor=doctor, referral=referral, outcome="Something else")

    referral.refresh_from_db()
    assert referral.outcome == "Excised 3 May."
    assert _actions("referral.close") == ["referral.close"]


def test_only_doctors_of_the_clinic_close(staff, clinic_admin, other_clinic, referral):
    for user in (staff, clinic_admin, factories.DoctorFactory(clinic=other_clinic)):
        with pytest.raises(PermissionDenied):
            referral_close(actor=user, referral=referral, outcome="Seen")
    referral.refresh_from_db()
    assert referral.status == "open"


def test_erasing_the_patient_erases_a_referral_closed_with_histology(
    clinic_admin, doctor, patient, referral
):
    factories.HistopathologyFactory(lesion=referral.lesion)
    referral_close(actor=doctor, referral=referral, with_histopathology=True)

    patient_erase(actor=clinic_admin, patient=patient, confirm_mrn=patient.mrn)

    assert not Referral.objects.exists()


# --- the pages -----------------------------------------------------------------------------


def _rows(body: str) -> list[tuple[str, str]]:
    """(referral id, row classes) of each row of the referrals table."""
    return re.findall(r'<tr class="([^"]*)" data-referral="(\d+)"', body)


def test_a_referrals_life_through_the_pages(client, doctor, analysis):
    client.force_login(doctor)
    lists = reverse("diagnosis:referral_list")

    # The doctor signs "refer urgently" on the review page, naming the destination.
    response = client.post(reverse("diagnosis:review_edit", args=[analysis.pk]), REFER_FORM)
    assert response.status_code == 302
    referral = Referral.objects.get()
    detail = reverse("diagnosis:referral_detail", args=[referral.pk])
    result_page = client.get(reverse("diagnosis:analysis", args=[analysis.pk])).content.decode()
    assert detail in result_page and DESTINATION.replace("'", "&#x27;") in result_page

    # Listed as open, not overdue.
    body = client.get(lists).content.decode()
    assert _rows(body) == [("referral-row", str(referral.pk))]
    assert client.get(lists + "?status=overdue").content.decode().count("data-referral=") == 0

    # Past its due date: overdue, highlighted, and on the dashboard.
    _pass_due_date(referral, days=3)
    body = client.get(lists + "?status=overdue").content.decode()
    assert _rows(body) == [("referral-row overdue", str(referral.pk))]
    assert "Overdue: was due" in body
    dashboard = client.get(reverse("diagnosis:dashboard")).content.decode()
    tile = re.search(
        r'<a class="count card alert" id="tile-overdue-referrals" href="([^"]+)">', dashboard
    )
    assert tile and tile.group(1) == lists + "?status=overdue"
    assert '<strong id="count-overdue-referrals">1</strong>' in dashboard

    # The doctor closes it with the outcome.
    page = client.get(detail).content.decode()
    assert 'id="close-referral-form"' in page
    response = client.post(
        reverse("diagnosis:referral_close", args=[referral.pk]),
        {"outcome": "Seen 12 May; wide local excision booked."},
    )
    assert response.status_code == 302
    referral.refresh_from_db()
    assert referral.status == "closed"
    assert referral.outcome == "Seen 12 May; wide local excision booked."

    # Listed as closed, no longer open or overdue; the dashboard tile is back to 0.
    assert _rows(client.get(lists + "?status=closed").content.decode()) == [
        ("referral-row", str(referral.pk))
    ]
    assert not _rows(client.get(lists).content.decode())
    assert not _rows(client.get(lists + "?status=overdue").content.decode())
    assert '<strong id="count-overdue-referrals">0</strong>' in client.get("/").content.decode()

    # Audited once per step: one create, one close; each list and page read recorded.
    assert _actions("referral.create") == ["referral.create"]
    assert _actions("referral.close") == ["referral.close"]
    assert AuditEvent.objects.filter(action="referral.list").count() == 6
    assert (
        AuditEvent.objects.filter(action="referral.view", object_id=str(referral.pk)).count() == 1
    )
    event = AuditEvent.objects.get(action="referral.close")
    assert event.patient_id == analysis.image.lesion.patient_id and event.user == doctor


def test_signing_twice_from_the_page_opens_one_referral(client, doctor, analysis):
    client.force_login(doctor)
    url = reverse("diagnosis:review_edit", args=[analysis.pk])

    client.post(url, REFER_FORM)
    second = client.post(url, REFER_FORM)

    assert second.status_code == 302
    assert Referral.objects.count() == 1


def test_the_review_form_asks_where_to_refer(client, doctor, analysis):
    client.force_login(doctor)

    response = client.post(
        reverse("diagnosis:review_edit", args=[analysis.pk]),
        REFER_FORM | {"referral_to": ""},
    )

    assert response.status_code == 400
    assert "Say where the patient is referred" in response.content.decode()
    assert not Review.objects.exists()


def test_closing_without_outcome_is_refused_in_words_and_twice_is_harmless(
    client, doctor, referral
):
    client.force_login(doctor)
    close = reverse("diagnosis:referral_close", args=[referral.pk])

    refused = client.post(close, {"outcome": ""})
    assert refused.status_code == 400
    assert "Write the outcome to close the referral." in refused.content.decode()

    client.post(close, {"outcome": "Excised."})
    again = client.post(close, {"outcome": "Excised."}, follow=True)
    assert "already closed" in again.content.decode()
    assert _actions("referral.close") == ["referral.close"]


def test_the_close_form_offers_the_histology_result_once_recorded(client, doctor, referral):
    factories.HistopathologyFactory(lesion=referral.lesion, diagnosis="bcc", lab_reference="H-9")
    client.force_login(doctor)

    page = client.get(reverse("diagnosis:referral_detail", args=[referral.pk])).content.decode()
    assert 'name="with_histopathology"' in page and "H-9" in page
    client.post(
        reverse("diagnosis:referral_close", args=[referral.pk]), {"with_histopathology": "on"}
    )

    referral.refresh_from_db()
    assert referral.histopathology.lab_reference == "H-9"
    closed = client.get(reverse("diagnosis:referral_detail", args=[referral.pk])).content.decode()
    assert 'id="referral-histology"' in closed and "Basal cell carcinoma" in closed


def test_staff_and_admins_follow_referrals_but_cannot_close(client, staff, clinic_admin, referral):
    for user in (staff, clinic_admin):
        client.force_login(user)
        assert client.get(reverse("diagnosis:referral_list")).status_code == 200
        page = client.get(reverse("diagnosis:referral_detail", args=[referral.pk]))
        assert page.status_code == 200
        assert 'id="close-referral-form"' not in page.content.decode()
        closing = client.post(
            reverse("diagnosis:referral_close", args=[referral.pk]), {"outcome": "Seen"}
        )
        assert closing.status_code == 403
    referral.refresh_from_db()
    assert referral.status == "open"


def test_another_clinics_referral_is_404(client, other_clinic, referral):
    client.force_login(factories.DoctorFactory(clinic=other_clinic))

    assert client.get(reverse("diagnosis:referral_detail", args=[referral.pk])).status_code == 404
    closing = client.post(
        reverse("diagnosis:referral_close", args=[referral.pk]), {"outcome": "Seen"}
    )
    assert closing.status_code == 404
    assert not _rows(client.get(reverse("diagnosis:referral_list")).content.decode())


def test_an_unknown_filter_says_so_and_shows_the_open_ones(client, staff, referral):
    client.force_login(staff)

    body = client.get(reverse("diagnosis:referral_list") + "?status=late").content.decode()

    assert "There is no &#x27;late&#x27; list of referrals; showing the open ones." in body
    assert _rows(body) == [("referral-row", str(referral.pk))]
