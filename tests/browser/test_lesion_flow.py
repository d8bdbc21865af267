"""A lesion followed over time, through headless Chromium: a site picked on the body map (with
the keyboard, then the mouse), two images of the lesion uploaded at two visits, and the
comparison opened at desktop and phone sizes (side by side, then stacked).

SCREENSHOT_DIR=... keeps pictures of each page at both sizes, to look at by eye.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from diagnosis.models import Analysis, DermoscopicImage, ImageEmbedding, Lesion
from tests import factories
from tests.browser.pages import click_and_wait, log_in, shoot_both_sizes

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FIRST = factories.SAMPLES / "nv_ISIC_0024319.jpg"
SECOND = factories.SAMPLES / "mel_ISIC_0024481.jpg"
# Each visit's result, written as the worker stores one (the worker has its own tests).
RESULTS = [
    {"mel": 0.06, "nv": 0.88, "bkl": 0.06, "level": "routine", "reason": ""},
    {"mel": 0.64, "nv": 0.26, "bkl": 0.10, "level": "urgent", "reason": "Melanoma 64%"},
]


def _finish(analysis_id: int, result: dict, days_ago: int) -> None:
    probabilities = {c: 0.0 for c in ("akiec", "bcc", "df", "vasc")} | {
        c: result[c] for c in ("mel", "nv", "bkl")
    }
    Analysis.objects.filter(pk=analysis_id).update(
        status="done",
        probabilities=probabilities,
        top_class=max(probabilities, key=probabilities.get),
        melanoma_probability=result["mel"],
        risk_tier="high" if result["level"] == "urgent" else "low",
        triage_level=result["level"],
        triage_reason=result["reason"],
        model_version="ham10000-test-v2",
        finished_at=timezone.now(),
    )
    when = timezone.now() - datetime.timedelta(days=days_ago)
    image_id = Analysis.objects.get(pk=analysis_id).image_id
    DermoscopicImage.objects.filter(pk=image_id).update(uploaded_at=when)


def _upload(browser, live_server, path: Path) -> int:
    from selenium.webdriver.common.by import By

    button = browser.find_element(By.ID, "upload-button")
    browser.find_element(By.NAME, "image").send_keys(str(path))
    click_and_wait(browser, button)
    assert "/analyses/" in browser.current_url, browser.page_source[:2000]
    return int(browser.current_url.rstrip("/").split("/")[-1])


def test_site_on_the_body_map_two_visits_and_the_comparison(browser, live_server, transactional_db):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    clinic = factories.ClinicFactory(name="Vienna Skin Clinic")
    doctor = factories.DoctorFactory(
        clinic=clinic, email="eva.gruber@vienna.example", full_name="Dr Eva Gruber"
    )
    patient = factories.PatientFactory(clinic=clinic, first_name="Anna", last_name="Huber")
    log_in(browser, live_server.url, doctor.email)

    # The lesion form: the map shows once its script runs; Enter on a region chooses it.
    browser.get(live_server.url + reverse("diagnosis:lesion_create", args=[patient.pk]))
    site = browser.find_element(By.NAME, "anatomic_site")
    side = browser.find_element(By.NAME, "laterality")
    back = browser.find_element(By.ID, "region-back-trunk-right")
    browser.execute_script("arguments[0].focus()", back)
    back.send_keys(Keys.ENTER)
    assert (site.get_attribute("value"), side.get_attribute("value")) == ("back", "right")
    assert back.get_attribute("aria-pressed") == "true"
    # Then the mouse, on the patient's left arm (on the viewer's right in the front view).
    browser.find_element(By.ID, "region-front-arm-left").click()
    assert (site.get_attribute("value"), side.get_attribute("value")) == (
        "upper extremity",
        "left",
    )
    assert "Left arm (upper extremity)" in browser.find_element(By.ID, "body-map-choice").text
    assert back.get_attribute("aria-pressed") == "false"
    browser.find_element(By.NAME, "size_mm").send_keys("5.5")
    shoot_both_sizes(browser, "lesion-form")
    click_and_wait(browser, browser.find_element(By.ID, "save-lesion"))
    lesion = Lesion.objects.get(patient=patient)
    assert (lesion.anatomic_site, lesion.laterality, lesion.body_map_region) == (
        "upper extremity",
        "left",
        "front-arm-left",
    )

    # Two visits: an image now (dated back 60 days), another today.
    first = _upload(browser, live_server, FIRST)
    _finish(first, RESULTS[0], days_ago=60)
    browser.get(
        live_server.url + reverse("diagnosis:upload", args=[patient.pk]) + f"?lesion={lesion.pk}"
    )
    second = _upload(browser, live_server, SECOND)
    _finish(second, RESULTS[1], days_ago=0)

    # The lesion's page: both images newest first, the change flagged.
    browser.get(live_server.url + reverse("diagnosis:lesion_detail", args=[lesion.pk]))
    entries = browser.find_elements(By.CSS_SELECTOR, ".timeline-entry")
    assert [e.get_attribute("data-analysis") for e in entries] == [str(second), str(first)]
    assert "Changed since last visit: Routine" in browser.find_element(By.ID, "lesion-changed").text
    shoot_both_sizes(browser, "lesion-page")

    # The comparison, from the lesion page's button.
    click_and_wait(browser, browser.find_element(By.ID, "compare-images"))
    assert "+58.0 points" in browser.find_element(By.ID, "melanoma-change").text
    before = browser.find_element(By.ID, "compare-before")
    after = browser.find_element(By.ID, "compare-after")
    browser.set_window_size(1280, 1000)
    assert (
        before.location["y"] == after.location["y"] and before.location["x"] < after.location["x"]
    )
    assert before.size["width"] == after.size["width"]  # the same scale: frames of one size
    images = browser.find_elements(By.CSS_SELECTOR, ".compare-frame img")
    assert len(images) == 2 and all(
        browser.execute_script("return arguments[0].naturalWidth", img) > 0 for img in images
    )
    browser.set_window_size(390, 844)
    assert after.location["y"] >= before.location["y"] + before.size["height"]  # stacked
    shoot_both_sizes(browser, "lesion-compare")
    # Printed: no navigation or picker, the two images side by side.
    browser.set_window_size(1280, 1000)
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert not browser.find_element(By.CSS_SELECTOR, ".topbar").is_displayed()
    assert not browser.find_element(By.ID, "compare-pick").is_displayed()
    assert before.location["y"] == after.location["y"]
    shoot_both_sizes(browser, "lesion-compare-print")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})

    # The newer result's similar confirmed cases: another patient's, signed by a doctor.
    other = factories.LesionFactory(patient=factories.PatientFactory(clinic=clinic))
    confirmed = factories.DoneAnalysisFactory(
        image=factories.DermoscopicImageFactory(
            lesion=other, thumbnail=factories.ContentFile(FIRST.read_bytes(), name="t.jpg")
        )
    )
    factories.ReviewFactory(
        analysis=confirmed,
        author=doctor,
        diagnosis="mel",
        signed_at=timezone.now(),
        signed_by=doctor,
        signed_by_name=doctor.get_full_name(),
    )
    for analysis_id, direction in (
        (first, (1, 0)),
        (second, (0.8, 0.6)),
        (confirmed.pk, (0.6, 0.8)),
    ):
        ImageEmbedding.objects.create(
            analysis_id=analysis_id,
            clinic=clinic,
            space="test/pca2-0",
            vector=np.asarray(direction, dtype="<f4").tobytes(),
        )
    browser.get(live_server.url + reverse("diagnosis:analysis", args=[second]))
    panel = browser.find_element(By.ID, "similar-cases")
    assert f'data-analysis="{confirmed.pk}"' in panel.get_attribute("innerHTML")
    assert "Melanoma" in panel.text and "distance 0.04" in panel.text
    shoot_both_sizes(browser, "similar-cases")

    # The patient page marks the lesion, urgent now.
    browser.get(live_server.url + reverse("patients:detail", args=[patient.pk]))
    mark = browser.find_element(By.CSS_SELECTOR, f'.mark[data-lesion="{lesion.pk}"]')
    assert mark.get_attribute("data-level") == "urgent"
    shoot_both_sizes(browser, "patient-page")
    browser.get(live_server.url + reverse("diagnosis:worklist"))
    shoot_both_sizes(browser, "worklist")
