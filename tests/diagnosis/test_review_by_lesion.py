"""Review by lesion: the worklist groups waiting results by lesion (newest image first), and a
doctor signs the review of a visit's newest image and covers its older ones in one audited step.
"""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.models import AuditEvent
from diagnosis import selectors, services
from diagnosis.models import Analysis, Review
from diagnosis.selectors.review import worklist, worklist_by_lesion
from tests import factories
from tests.diagnosis.lesion_world import at, result, sign

REVIEW = {"agrees_with_ai": True, "diagnosis": "mel", "management": "excise", "notes": ""}
FORM = {"agrees_with_ai": "yes", "diagnosis": "mel", "management": "excise", "action": "sign"}


@pytest.fixture
def visit(lesion):
    """Three images of one lesion at one visit (the newest urgent) and one at an earlier
    visit, none reviewed."""
    earlier = result(lesion, "routine", when=at(60))
    first, second = result(lesion, "routine", when=at(1, 9)), result(lesion, "soon", when=at(1, 10))
    newest = result(lesion, "urgent", when=at(1, 11))
    return {"earlier": earlier, "first": first, "second": second, "newest": newest}


def test_worklist_groups_a_lesions_results_newest_first(doctor, patient, visit):
    other = result(factories.LesionFactory(patient=patient), "soon")

    groups = worklist_by_lesion(user=doctor)

    assert [g.lesion.pk for g in groups] == [visit["newest"].image.lesion_id, other.image.lesion_id]
    assert [a.pk for a in groups[0].analyses] == [
        visit[k].pk for k in ("newest", "second", "first", "earlier")
    ]
    # Review by lesion covers the newest one's visit only.
    assert [a.pk for a in groups[0].same_visit_older] == [visit["second"].pk, visit["first"].pk]


def test_worklist_page_has_one_row_per_lesion_with_every_waiting_image(client, doctor, visit):
    client.force_login(doctor)
    body = client.get(reverse("diagnosis:worklist")).content.decode()

    assert body.count('class="worklist-row"') == 1
    listed = set(map(int, re.findall(r'data-analysis="(\d+)"', body)))
    assert listed == {a.pk for a in visit.values()}
    lesion_id = visit["newest"].image.lesion_id
    assert reverse("diagnosis:lesion_review", args=[lesion_id]) in body
    assert "Review lesion (3 images)" in body
    assert 'data-changed="routine-urgent"' in body  # changed since the last visit


def test_doctor_signs_the_newest_and_covers_the_visit_in_one_step(client, doctor, visit):
    lesion_id = visit["newest"].image.lesion_id
    client.force_login(doctor)
    page = client.get(reverse("diagnosis:lesion_review", args=[lesion_id])).content.decode()
    assert f'value="{visit["second"].pk}"' in page and f'value="{visit["first"].pk}"' in page
    assert f'value="{visit["earlier"].pk}"' not in page  # another visit

    response = client.post(
        reverse("diagnosis:lesion_review", args=[lesion_id]),
        FORM | {"cover": [visit["second"].pk, visit["first"].pk]},
    )

    assert response["Location"] == reverse("diagnosis:lesion_detail", args=[lesion_id])
    review = Review.objects.get(analysis=visit["newest"])
    assert review.is_signed and review.signed_by == doctor
    covered = Analysis.objects.filter(covered_by=review).values_list("pk", flat=True)
    assert set(covered) == {visit["second"].pk, visit["first"].pk}
    # They leave the worklist and the dashboard's counts; the earlier visit stays.
    assert [a.pk for a in worklist(user=doctor)] == [visit["earlier"].pk]
    assert selectors.dashboard_counts(user=doctor)["not_routine_awaiting_review"] == 0
    event = AuditEvent.objects.get(action="review.cover")
    assert sorted(event.detail["covered"]) == sorted([visit["second"].pk, visit["first"].pk])
    assert event.user == doctor and event.object_id == str(review.pk)
    assert event.patient_id == visit["newest"].image.lesion.patient_id
    assert AuditEvent.objects.filter(action="review.sign", object_id=str(review.pk)).exists()


def test_an_unticked_image_stays_on_the_worklist(client, doctor, visit):
    client.force_login(doctor)
    client.post(
        reverse("diagnosis:lesion_review", args=[visit["newest"].image.lesion_id]),
        FORM | {"cover": [visit["second"].pk]},
    )
    assert {a.pk for a in worklist(user=doctor)} == {visit["first"].pk, visit["earlier"].pk}


def test_covering_an_image_of_another_visit_is_refused_and_nothing_is_signed(doctor, visit):
    with pytest.raises(ValidationError) as refused:
        services.review_sign_covering(
            actor=doctor, analysis=visit["newest"], cover=[visit["earlier"]], **REVIEW
        )

    assert "from another visit" in " ".join(refused.value.messages)
    assert not Review.objects.exists()
    assert not Analysis.objects.filter(covered_by__isnull=False).exists()


@pytest.mark.parametrize("case", ["newer", "own draft", "signed", "not signed"])
def test_what_cannot_be_covered(doctor, visit, case):
    newest, second = visit["newest"], visit["second"]
    if case == "newer":
        review, target = sign(second, doctor), newest
        words = "newer than the image reviewed"
    elif case == "own draft":
        factories.ReviewFactory(analysis=second, author=doctor)
        review, target, words = sign(newest, doctor), second, "has a draft review"
    elif case == "signed":
        sign(second, doctor)
        review, target, words = sign(newest, doctor), second, "signed review of its own"
    else:
        review = factories.ReviewFactory(analysis=newest, author=doctor)
        target, words = second, "Only a signed review can cover"

    with pytest.raises(ValidationError) as refused:
        services.review_cover(actor=doctor, review=review, analyses=[target])

    assert words in " ".join(refused.value.messages)
    target.refresh_from_db()
    assert target.covered_by is None


def test_staff_may_not_review_by_lesion(client, staff, visit):
    client.force_login(staff)
    url = reverse("diagnosis:lesion_review", args=[visit["newest"].image.lesion_id])
    assert client.post(url, FORM).status_code == 403
    assert not Review.objects.exists()


def test_a_covered_result_names_the_review_that_covers_it(client, doctor, visit):
    review = services.review_sign_covering(
        actor=doctor, analysis=visit["newest"], cover=[visit["first"]], **REVIEW
    )
    client.force_login(doctor)

    body = client.get(reverse("diagnosis:analysis", args=[visit["first"].pk])).content.decode()
    timeline = selectors.lesion_timeline(user=doctor, lesion_id=review.analysis.image.lesion_id)

    assert "Covered by" in body and doctor.get_full_name() in body
    assert reverse("diagnosis:analysis", args=[visit["newest"].pk]) in body
    states = {e.analysis.pk: e.review_state for e in timeline.entries}
    assert states[visit["first"].pk].startswith(f"Covered by {doctor.get_full_name()}")
    assert states[visit["second"].pk] == "Awaiting review"


def test_the_report_of_a_covered_image_names_the_covering_review(client, doctor, visit):
    services.review_sign_covering(
        actor=doctor, analysis=visit["newest"], cover=[visit["first"]], **REVIEW
    )
    client.force_login(doctor)

    body = client.get(reverse("reports:analysis_print", args=[visit["first"].pk])).content.decode()

    assert "Covered by the review of another image of this visit." in body
    assert f"(image {visit['newest'].image_id})" in body
    assert "NOT REVIEWED" not in body
