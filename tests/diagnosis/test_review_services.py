"""Reviews: who may write and sign them, the lock on a signed review, and amendments."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import AuditEvent
from diagnosis.models import Review
from diagnosis.services.review import ReviewLocked, review_amend, review_save, review_sign
from tests import factories

FIELDS = {
    "agrees_with_ai": True,
    "diagnosis": "mel",
    "management": "excise",
    "notes": "Atypical network.",
}
DISAGREE = FIELDS | {"agrees_with_ai": False}


@pytest.fixture
def analysis(lesion):
    return factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))


def test_doctor_signs_a_review_in_one_step(doctor, analysis):
    review = review_save(actor=doctor, analysis=analysis, sign=True, **FIELDS)

    review.refresh_from_db()
    assert review.is_signed
    assert review.signed_by == doctor
    assert review.signed_by_name == doctor.full_name
    assert review.version == 1
    actions = list(
        AuditEvent.objects.filter(action__startswith="review.")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["review.create", "review.sign"]


def test_staff_cannot_sign_review(staff, doctor, analysis):
    draft = review_save(actor=doctor, analysis=analysis, **FIELDS)

    with pytest.raises(PermissionDenied):
        review_sign(actor=staff, review=draft)

    draft.refresh_from_db()
    assert not draft.is_signed


def test_staff_and_admin_cannot_write_a_review(staff, clinic_admin, analysis):
    for user in (staff, clinic_admin):
        with pytest.raises(PermissionDenied):
            review_save(actor=user, analysis=analysis, sign=True, **FIELDS)
    assert not Review.objects.exists()


def test_doctor_of_another_clinic_cannot_review(other_clinic, analysis):
    outsider = factories.DoctorFactory(clinic=other_clinic)

    with pytest.raises(PermissionDenied):
        review_save(actor=outsider, analysis=analysis, **FIELDS)


def test_a_draft_can_be_edited_then_signed(doctor, analysis):
    draft = review_save(actor=doctor, analysis=analysis, **FIELDS)
    review_save(
        actor=doctor, analysis=analysis, **(FIELDS | {"diagnosis": "nv", "agrees_with_ai": False})
    )

    signed = review_sign(actor=doctor, review=draft)

    assert Review.objects.count() == 1
    assert signed.diagnosis == "nv"
    assert signed.is_signed


def test_locked_review_cannot_be_edited_through_the_service(doctor, analysis):
    review_save(actor=doctor, analysis=analysis, sign=True, **FIELDS)

    with pytest.raises(ReviewLocked):
        review_save(actor=doctor, analysis=analysis, **(FIELDS | {"diagnosis": "nv"}))
    with pytest.raises(ReviewLocked):
        review_sign(actor=doctor, review=Review.objects.get())

    assert Review.objects.get().diagnosis == "mel"


def test_database_refuses_to_update_a_signed_review(doctor, analysis):
    review = review_save(actor=doctor, analysis=analysis, sign=True, **FIELDS)

    with pytest.raises(IntegrityError), transaction.atomic():
        Review.objects.filter(pk=review.pk).update(diagnosis="nv")

    assert Review.objects.get(pk=review.pk).diagnosis == "mel"


def test_amendment_creates_a_new_version_and_keeps_the_old(doctor, analysis):
    first = review_save(actor=doctor, analysis=analysis, sign=True, **FIELDS)

    second = review_amend(
        actor=doctor,
        analysis=analysis,
        amendment_reason="Histology came back benign.",
        sign=True,
        agrees_with_ai=False,
        diagnosis="nv",
        management="reassure",
    )

    first.refresh_from_db()
    assert (first.version, first.diagnosis, first.is_signed) == (1, "mel", True)
    assert second.version == 2
    assert second.supersedes == first
    assert second.diagnosis == "nv"
    assert second.notes == "Atypical network."  # carried over from the amended version
    assert second.is_signed
    assert AuditEvent.objects.filter(action="review.amend", object_id=str(second.pk)).exists()


def test_amendment_needs_a_reason_and_a_signed_review(doctor, analysis):
    with pytest.raises(ValidationError):
        review_amend(actor=doctor, analysis=analysis, amendment_reason="typo")
    review_save(actor=doctor, analysis=analysis, sign=True, **FIELDS)
    with pytest.raises(ValidationError) as raised:
        review_amend(actor=doctor, analysis=analysis, amendment_reason="  ")
    assert "amendment_reason" in raised.value.message_dict
    assert Review.objects.count() == 1


def test_monitoring_requires_a_follow_up_date(doctor, analysis):
    with pytest.raises(ValidationError) as raised:
        review_save(actor=doctor, analysis=analysis, **(FIELDS | {"management": "monitor"}))

    assert "follow_up_on" in raised.value.message_dict
    assert not Review.objects.exists()


def test_follow_up_date_is_kept_only_when_monitoring(doctor, analysis):
    in_three_months = timezone.localdate() + datetime.timedelta(days=90)
    review = review_save(
        actor=doctor,
        analysis=analysis,
        **(FIELDS | {"management": "excise", "follow_up_on": in_three_months}),
    )

    assert review.follow_up_on is None


def test_other_diagnosis_must_be_named(doctor, analysis):
    with pytest.raises(ValidationError) as raised:
        review_save(actor=doctor, analysis=analysis, **(DISAGREE | {"diagnosis": "other"}))
    assert "diagnosis_other" in raised.value.message_dict

    review = review_save(
        actor=doctor,
        analysis=analysis,
        **(DISAGREE | {"diagnosis": "other", "diagnosis_other": "Seborrhoeic wart"}),
    )
    assert review.diagnosis_label == "Other: Seborrhoeic wart"


def test_an_unfinished_analysis_cannot_be_reviewed(doctor, lesion):
    queued = factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))

    with pytest.raises(ValidationError):
        review_save(actor=doctor, analysis=queued, **FIELDS)


def test_database_allows_one_version_number_per_analysis(doctor, analysis):
    factories.ReviewFactory(
        analysis=analysis, author=doctor, signed_at=timezone.now(), signed_by_name="Dr A"
    )

    with pytest.raises(IntegrityError), transaction.atomic():
        factories.ReviewFactory(analysis=analysis, author=doctor, version=1)


def test_database_refuses_monitoring_without_date(doctor, analysis):
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.ReviewFactory(analysis=analysis, author=doctor, management="monitor")


def test_erasing_a_patient_removes_signed_and_amended_reviews(doctor, patient, analysis):
    review_save(actor=doctor, analysis=analysis, sign=True, **FIELDS)
    review_amend(actor=doctor, analysis=analysis, amendment_reason="Second look", sign=True)

    patient.delete()

    assert not Review.objects.exists()
