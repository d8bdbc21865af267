"""A review cannot say "I agree with the AI" and name another diagnosis: refused in the service
(so every caller), on the review page and on the amendment page, with words that say why."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from diagnosis.models import Review
from diagnosis.services.review import review_amend, review_save, review_sign
from tests import factories

MESSAGE = (
    "You said you agree with the AI, but your diagnosis (Melanocytic nevus) is not the AI's "
    'suggestion (Melanoma). Choose "No, I disagree", or change your diagnosis.'
)
AGREE_BUT_NEVUS = {"agrees_with_ai": True, "diagnosis": "nv", "management": "reassure"}


@pytest.fixture
def analysis(lesion):
    # The AI suggests melanoma (the factory's top class).
    return factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))


def test_agreeing_while_naming_another_diagnosis_is_refused(doctor, analysis):
    with pytest.raises(ValidationError) as raised:
        review_save(actor=doctor, analysis=analysis, sign=True, **AGREE_BUT_NEVUS)

    assert raised.value.message_dict == {"agrees_with_ai": [MESSAGE]}
    assert not Review.objects.exists()


def test_agreeing_with_other_is_refused_too(doctor, analysis):
    with pytest.raises(ValidationError) as raised:
        review_save(
            actor=doctor,
            analysis=analysis,
            **(AGREE_BUT_NEVUS | {"diagnosis": "other", "diagnosis_other": "Wart"}),
        )

    assert "agrees_with_ai" in raised.value.message_dict


def test_agreeing_with_the_same_diagnosis_or_disagreeing_with_another_is_fine(doctor, lesion):
    agreed = factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
    disagreed = factories.DoneAnalysisFactory(
        image=factories.DermoscopicImageFactory(lesion=lesion)
    )

    review_save(
        actor=doctor,
        analysis=agreed,
        sign=True,
        **(AGREE_BUT_NEVUS | {"diagnosis": "mel", "management": "excise"}),
    )
    review_save(
        actor=doctor, analysis=disagreed, sign=True, **(AGREE_BUT_NEVUS | {"agrees_with_ai": False})
    )

    assert Review.objects.filter(signed_at__isnull=False).count() == 2


def test_an_amendment_cannot_become_inconsistent(doctor, analysis):
    review_save(
        actor=doctor,
        analysis=analysis,
        sign=True,
        **(AGREE_BUT_NEVUS | {"diagnosis": "mel", "management": "excise"}),
    )

    with pytest.raises(ValidationError) as raised:
        review_amend(
            actor=doctor,
            analysis=analysis,
            amendment_reason="Histology: naevus",
            sign=True,
            diagnosis="nv",  # "agrees" carried over from version 1
        )

    assert raised.value.message_dict == {"agrees_with_ai": [MESSAGE]}
    assert Review.objects.count() == 1


def test_an_inconsistent_draft_saved_before_the_rule_cannot_be_signed(doctor, analysis):
    draft = Review.objects.create(analysis=analysis, version=1, author=doctor, **AGREE_BUT_NEVUS)

    with pytest.raises(ValidationError):
        review_sign(actor=doctor, review=draft)

    draft.refresh_from_db()
    assert not draft.is_signed


def test_the_review_page_shows_why_and_keeps_what_was_typed(client, doctor, analysis):
    client.force_login(doctor)

    response = client.post(
        reverse("diagnosis:review_edit", args=[analysis.pk]),
        {
            "agrees_with_ai": "yes",
            "diagnosis": "nv",
            "management": "reassure",
            "notes": "Symmetric network.",
            "action": "sign",
        },
    )

    body = response.content.decode()
    assert response.status_code == 400
    assert "is not the AI&#x27;s suggestion (Melanoma)" in body
    assert "Symmetric network." in body
    assert not Review.objects.exists()


def test_the_amendment_page_refuses_it_too(client, doctor, analysis):
    factories.ReviewFactory(
        analysis=analysis, author=doctor, signed_at=timezone.now(), signed_by_name="Dr A"
    )
    client.force_login(doctor)

    response = client.post(
        reverse("diagnosis:review_amend", args=[analysis.pk]),
        {
            "agrees_with_ai": "yes",
            "diagnosis": "bcc",
            "management": "excise",
            "amendment_reason": "Second look",
            "action": "sign",
        },
    )

    assert response.status_code == 400
    assert "your diagnosis (Basal cell carcinoma) is not the AI" in response.content.decode()
    assert Review.objects.count() == 1
