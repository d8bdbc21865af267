"""The body map: the static drawing is the render of diagnosis.body_map.REGIONS, its regions are
the classifier's anatomic sites on the right side of the body, it is reachable by keyboard,
and the patient page marks each lesion coloured by its latest triage."""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree

from django.conf import settings
from django.urls import reverse

from diagnosis import body_map
from diagnosis.models import AnatomicSite
from tests import factories
from tests.diagnosis.lesion_world import result

STATIC_FILE = Path(settings.BASE_DIR) / "static" / body_map.STATIC_PATH
SVG = "{http://www.w3.org/2000/svg}"


def test_the_static_drawing_is_the_render_of_the_regions():
    assert STATIC_FILE.read_text() == body_map.render_svg(), (
        "static/diagnosis/body-map.svg is stale: python -m diagnosis.body_map > "
        "static/diagnosis/body-map.svg"
    )


def test_every_region_is_a_known_site_and_every_drawable_site_has_a_region():
    sites = {region.site for region in body_map.REGIONS.values()}
    assert sites <= set(AnatomicSite.values)
    # Trunk (no region of its own) and unknown stay in the drop-down.
    assert set(AnatomicSite.values) - sites == {"trunk", "unknown"}


def test_regions_are_focusable_buttons_with_a_name_and_no_inline_style():
    tree = ElementTree.fromstring(STATIC_FILE.read_text())  # noqa: S314 - our own file
    regions = [el for el in tree.iter() if el.get("class") == "region"]

    assert len(regions) == len(body_map.REGIONS)
    for el in regions:
        key = el.get("data-region")
        region = body_map.REGIONS[key]
        assert el.get("tabindex") == "0" and el.get("role") == "button"
        assert el.get("aria-label") == region.label
        assert el.get("data-site") == region.site
        assert el.get("data-laterality") == region.laterality
        assert el.find(f"{SVG}title").text == region.label
        assert el.get("style") is None


def test_the_patients_right_is_on_the_viewers_left_in_front_and_right_from_behind():
    regions = body_map.REGIONS
    assert regions["front-arm-right"].anchor[0] < 100 < regions["front-arm-left"].anchor[0]
    assert regions["back-arm-left"].anchor[0] < 300 < regions["back-arm-right"].anchor[0]
    # In the anatomical position the front view shows the palms and the back view the soles.
    assert regions["front-palm-left"].site == regions["back-sole-right"].site == "acral"
    assert regions["back-hand-left"].site == "hand" and regions["front-foot-left"].site == "foot"


def test_a_lesion_without_a_region_is_placed_on_its_site_and_side():
    assert body_map.region_for("upper extremity", "left").key == "front-arm-left"
    assert body_map.region_for("back", "right").key == "back-trunk-right"
    assert body_map.region_for("trunk", "").view == "front"
    assert body_map.region_for("unknown") is None


def test_the_lesion_form_draws_the_map_with_the_lists_as_fallback(client, staff, patient):
    client.force_login(staff)
    body = client.get(reverse("diagnosis:lesion_create", args=[patient.pk])).content.decode()

    # The map is hidden until its script runs; the lists are always there.
    assert re.search(
        r'<div class="body-map-picker" id="body-map-picker" data-body-map-picker '
        r"hidden>",
        body,
    )
    assert body.count('class="region"') == len(body_map.REGIONS)
    assert '<select name="anatomic_site"' in body and '<select name="laterality"' in body
    assert 'type="hidden" name="body_map_region"' in body
    assert "js/body_map.js" in body


def test_patient_page_marks_each_lesion_coloured_by_its_latest_triage(client, staff, patient):
    arm = factories.LesionFactory(
        patient=patient,
        anatomic_site="upper extremity",
        laterality="left",
        body_map_region="front-arm-left",
    )
    back = factories.LesionFactory(patient=patient, anatomic_site="back", laterality="right")
    nowhere = factories.LesionFactory(patient=patient, anatomic_site="unknown")
    result(arm, "routine")
    result(arm, "urgent")  # the latest decides the colour
    client.force_login(staff)

    body = client.get(reverse("patients:detail", args=[patient.pk])).content.decode()

    marks = dict(re.findall(r'class="mark" data-lesion="(\d+)" data-level="(\w+)"', body))
    assert marks == {str(arm.pk): "urgent", str(back.pk): "none"}
    arm_region = body_map.REGIONS["front-arm-left"]
    assert f'cx="{arm_region.anchor[0]:g}"' in body
    assert f'href="{reverse("diagnosis:lesion_detail", args=[arm.pk])}"' in body
    # A lesion the map cannot draw is still listed, and says so.
    row = re.search(rf'<tr data-lesion="{nowhere.pk}">.*?</tr>', body, re.S).group(0)
    assert "not on the body map" in row
    # The drawing itself comes from the static file, as an image.
    assert "diagnosis/body-map.svg" in body
