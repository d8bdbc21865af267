"""A lesion's own page: its facts, every image as a timeline by visit (newest first), the trend
of its results, the change of triage since the last visit, and the comparison of two images."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.models import AuditEvent
from diagnosis import presentation, selectors, services
from diagnosis.models import Lesion
from tests import factories
from tests.diagnosis.lesion_world import at, result, sign


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def test_timeline_lists_every_image_newest_first_grouped_by_visit(staff, doctor, lesion):
    first = result(lesion, "routine", when=at(90, hour=9))
    second_early = result(lesion, "routine", when=at(30, hour=9))
    second_late = result(lesion, "urgent", when=at(30, hour=11))
    sign(first, doctor)
    queued = factories.AnalysisFactory(
        image=factories.DermoscopicImageFactory(lesion=lesion)
    )  # today, no result yet

    timeline = selectors.lesion_timeline(user=staff, lesion_id=lesion.pk)

    assert [e.image.pk for e in timeline.entries] == [
        queued.image_id,
        second_late.image_id,
        second_early.image_id,
        first.image_id,
    ]
    assert [[e.image.pk for e in v.entries] for v in timeline.visits] == [
        [queued.image_id],
        [second_late.image_id, second_early.image_id],
        [first.image_id],
    ]
    # A visit is as urgent as its most urgent result.
    assert [v.level for v in timeline.visits] == ["", "urgent", "routine"]
    states = [e.review_state for e in timeline.entries]
    assert states[0] == "No result to review"
    assert states[1] == states[2] == "Awaiting review"
    assert states[3].startswith(f"Signed by {doctor.get_full_name()}")
    # Oldest first for the chart.
    assert [p.level for p in timeline.trend_points] == ["routine", "routine", "urgent"]


def test_lesion_page_shows_images_results_and_histology_and_is_audited_once(
    staff_client, staff, lesion
):
    lesion.laterality, lesion.size_mm = "left", Decimal("6.5")
    lesion.save()
    old = result(lesion, "routine", when=at(60))
    new = result(lesion, "urgent", when=at(1))
    factories.HistopathologyFactory(lesion=lesion, diagnosis="mel", lab_reference="H-777")

    response = staff_client.get(reverse("diagnosis:lesion_detail", args=[lesion.pk]))
    body = response.content.decode()

    assert response.status_code == 200
    assert "Back, left" in body and "6.5 mm" in body
    assert "H-777" in body and "Melanoma" in body
    # Newest first: the urgent image's entry comes before the routine one's.
    order = re.findall(r'class="timeline-entry" data-image="(\d+)"', body)
    assert order == [str(new.image_id), str(old.image_id)]
    assert f'src="{reverse("diagnosis:image", args=[new.image_id])}?size=thumb"' in body
    assert "71.0%" in body and "3.0%" in body  # p(mel) of each
    assert 'class="trend-chart"' in body
    assert reverse("diagnosis:lesion_compare", args=[lesion.pk]) in body
    assert f"{reverse('diagnosis:upload', args=[lesion.patient_id])}?lesion={lesion.pk}" in body
    events = AuditEvent.objects.filter(user=staff).exclude(action="login")
    assert [(e.action, e.object_id) for e in events] == [("lesion.view", str(lesion.pk))]
    assert events[0].patient_id == lesion.patient_id


def test_lesion_page_of_another_clinic_is_not_found(client, other_staff, lesion):
    client.force_login(other_staff)
    for name in ("lesion_detail", "lesion_compare", "lesion_edit"):
        assert client.get(reverse(f"diagnosis:{name}", args=[lesion.pk])).status_code == 404


def test_change_of_triage_since_the_last_visit_is_flagged_on_the_page(staff_client, lesion):
    result(lesion, "routine", when=at(40))
    result(lesion, "routine", when=at(2, hour=9))
    result(lesion, "urgent", when=at(2, hour=10))  # the visit's most urgent result

    body = staff_client.get(reverse("diagnosis:lesion_detail", args=[lesion.pk])).content.decode()

    assert 'id="lesion-changed"' in body
    assert 'data-changed="routine-urgent"' in body
    assert "Changed since last visit: Routine" in body


def test_same_triage_at_both_visits_is_not_flagged(staff_client, lesion):
    result(lesion, "soon", when=at(40))
    result(lesion, "soon", when=at(2))

    body = staff_client.get(reverse("diagnosis:lesion_detail", args=[lesion.pk])).content.decode()

    assert "Changed since last visit" not in body


def test_triage_change_compares_the_last_two_visits_with_a_result():
    import datetime

    d = [datetime.date(2025, 1, day) for day in (1, 2, 3)]
    assert presentation.triage_change([(d[0], "routine")]) is None
    change = presentation.triage_change([(d[0], "urgent"), (d[1], "soon"), (d[2], "routine")])
    assert (change.before, change.after, change.worse) == ("soon", "routine", False)
    assert presentation.triage_change([(d[0], "routine"), (d[1], ""), (d[1], "urgent")]).worse
    # A visit without a result is no visit to compare with.
    assert presentation.triage_change([(d[0], "soon"), (d[1], "")]) is None


def test_trend_chart_draws_one_dot_per_result_coloured_by_triage(lesion):
    import datetime

    points = [
        presentation.TrendPoint(datetime.date(2025, 1, 1), 0.05, "routine", "Image <1>"),
        presentation.TrendPoint(datetime.date(2025, 4, 1), 0.62, "urgent", "Image 2"),
    ]
    svg = str(presentation.melanoma_trend_svg(points))

    assert svg.count("<circle") == 2
    assert 'fill="#b42318"' in svg and 'fill="#1f5f99"' in svg  # urgent red, routine blue
    assert "Image &lt;1&gt;" in svg and "<1>" not in svg
    assert "<polyline" in svg


# --- The lesion's own fields --------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"size_mm": Decimal("0")}, "size_mm", "at least 0.1"),
        ({"size_mm": Decimal("301")}, "size_mm", "at most 300"),
        ({"laterality": "both"}, "laterality", "not a valid choice"),
        ({"body_map_region": "front-arm-left"}, "anatomic_site", "not back"),
        ({"body_map_region": "nowhere"}, "body_map_region", "body map"),
    ],
)
def test_lesion_fields_are_validated(staff, patient, fields, field, words):
    with pytest.raises(ValidationError) as refused:
        services.lesion_create(actor=staff, patient=patient, anatomic_site="back", **fields)

    assert field in refused.value.message_dict
    assert words in " ".join(refused.value.message_dict[field])
    assert not Lesion.objects.exists()


def test_a_map_region_of_the_other_side_is_refused(staff, patient):
    with pytest.raises(ValidationError) as refused:
        services.lesion_create(
            actor=staff,
            patient=patient,
            anatomic_site="upper extremity",
            laterality="right",
            body_map_region="front-arm-left",
        )
    assert "left side" in " ".join(refused.value.message_dict["laterality"])


def test_lesion_form_records_site_side_size_and_region(staff_client, patient):
    response = staff_client.post(
        reverse("diagnosis:lesion_create", args=[patient.pk]),
        {
            "anatomic_site": "upper extremity",
            "laterality": "left",
            "size_mm": "4.5",
            "body_map_region": "front-arm-left",
            "label": "forearm",
        },
    )

    lesion = patient.lesions.get()
    assert response.status_code == 302
    assert (lesion.laterality, lesion.size_mm, lesion.body_map_region) == (
        "left",
        Decimal("4.5"),
        "front-arm-left",
    )
    assert str(lesion) == "Upper extremity, left - forearm"


def test_size_in_centimetres_by_mistake_is_refused_with_words(staff_client, patient):
    response = staff_client.post(
        reverse("diagnosis:lesion_create", args=[patient.pk]),
        {"anatomic_site": "back", "size_mm": "450"},
    )
    assert "enter millimetres, not centimetres" in response.content.decode()
    assert not patient.lesions.exists()


def test_editing_a_lesion_is_audited_with_the_fields_changed(staff_client, staff, lesion):
    response = staff_client.post(
        reverse("diagnosis:lesion_edit", args=[lesion.pk]),
        {"anatomic_site": "back", "laterality": "right", "size_mm": "7", "label": lesion.label},
    )

    assert response["Location"] == reverse("diagnosis:lesion_detail", args=[lesion.pk])
    lesion.refresh_from_db()
    assert (lesion.laterality, lesion.size_mm) == ("right", Decimal("7"))
    event = AuditEvent.objects.get(action="lesion.update")
    assert event.detail["fields"] == ["laterality", "size_mm"]
    assert event.user == staff and event.patient_id == lesion.patient_id


# --- Comparison ---------------------------------------------------------------------------


def test_comparison_with_one_image_says_so_and_shows_it(staff_client, staff, lesion):
    only = result(lesion, "routine")

    response = staff_client.get(reverse("diagnosis:lesion_compare", args=[lesion.pk]))
    body = response.content.decode()

    assert response.status_code == 200
    assert "This lesion has one image so far." in body
    assert f'data-image="{only.image_id}"' in body
    assert 'id="compare-difference"' not in body
    event = AuditEvent.objects.exclude(action="login").get(user=staff)
    assert event.action == "lesion.compare" and event.detail["images"] == [only.image_id]


def test_comparison_shows_two_images_side_by_side_with_the_change(staff_client, lesion):
    earlier = result(lesion, "routine", when=at(100))
    middle = result(lesion, "soon", when=at(50))
    later = result(lesion, "urgent", when=at(3))

    default = staff_client.get(reverse("diagnosis:lesion_compare", args=[lesion.pk]))
    chosen = staff_client.get(
        reverse("diagnosis:lesion_compare", args=[lesion.pk])
        + f"?a={later.image_id}&b={earlier.image_id}"
    )

    body = default.content.decode()
    # By default the two latest results, the earlier on the left.
    assert re.search(rf'id="compare-before" data-image="{middle.image_id}"', body)
    assert re.search(rf'id="compare-after" data-image="{later.image_id}"', body)
    assert "+63.0 points" in body  # 8% -> 71%
    assert 'data-changed="soon-urgent"' in body
    assert "47 days apart" in body
    body = chosen.content.decode()
    assert re.search(rf'id="compare-before" data-image="{earlier.image_id}"', body)
    assert re.search(rf'id="compare-after" data-image="{later.image_id}"', body)
    assert "+68.0 points" in body


def test_comparison_never_shows_an_image_of_another_lesion(staff_client, patient, lesion):
    mine = [result(lesion, "routine", when=at(20)), result(lesion, "soon", when=at(2))]
    stranger = result(factories.LesionFactory(patient=patient), "urgent")

    body = staff_client.get(
        reverse("diagnosis:lesion_compare", args=[lesion.pk]) + f"?a={stranger.image_id}"
    ).content.decode()

    assert f'data-image="{stranger.image_id}"' not in body
    assert f'data-image="{mine[0].image_id}"' in body and f'data-image="{mine[1].image_id}"' in body


def test_a_re_analysed_image_shows_its_earlier_result_and_both_model_versions(staff_client, lesion):
    """Issue 16: re-analysis with a newer model keeps the earlier result; the lesion page
    shows both, each with the model that made it."""
    first = result(lesion, "routine", when=at(3))
    second = factories.DoneAnalysisFactory(image=first.image, model_version="ham10000-new-v3")

    body = staff_client.get(reverse("diagnosis:lesion_detail", args=[lesion.pk])).content.decode()

    assert f'data-analysis="{second.pk}"' in body
    assert f'data-earlier="{first.pk}"' in body
    assert "ham10000-new-v3" in body and first.model_version in body
