"""A doctor refers a high-risk lesion urgently, sees the referral go overdue on the dashboard,
follows the tile to it and closes it with the outcome: through headless Chromium."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from diagnosis.models import Referral
from tests import factories
from tests.browser.test_review_flow import _click_and_wait_for_next_page, _log_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _shoot(browser, name: str) -> None:
    """SCREENSHOT_DIR=... keeps the page at desktop and phone width, to look at by eye."""
    shots = os.environ.get("SCREENSHOT_DIR")
    if not shots:
        return
    Path(shots).mkdir(parents=True, exist_ok=True)
    browser.set_window_size(1280, 900)
    browser.save_screenshot(str(Path(shots) / f"{name}-desktop.png"))
    browser.set_window_size(390, 844)
    browser.save_screenshot(str(Path(shots) / f"{name}-phone.png"))
    browser.set_window_size(1280, 1600)


def test_doctor_refers_sees_it_overdue_and_closes_it(browser, live_server, transactional_db):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    clinic = factories.ClinicFactory(name="Vienna Skin Clinic")
    doctor = factories.DoctorFactory(
        clinic=clinic, email="eva.gruber@vienna.example", full_name="Dr Eva Gruber"
    )
    patient = factories.PatientFactory(clinic=clinic, first_name="Anna", last_name="Huber")
    lesion = factories.LesionFactory(patient=patient)
    analysis = factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
    # Two more referrals, so the list shows order and the highlight among others.
    for days, name in ((9, "Berger"), (30, "Wagner")):
        other = factories.PatientFactory(clinic=clinic, first_name="Karl", last_name=name)
        factories.ReferralFactory(
            analysis=factories.DoneAnalysisFactory(
                image=factories.DermoscopicImageFactory(
                    lesion=factories.LesionFactory(patient=other)
                )
            ),
            destination="Dermatologic surgery, AKH Wien",
            due_on=timezone.localdate() + datetime.timedelta(days=days),
        )

    _log_in(browser, live_server, doctor.email)
    browser.get(live_server.url + reverse("diagnosis:review_edit", args=[analysis.pk]))
    browser.find_element(By.CSS_SELECTOR, 'input[name="agrees_with_ai"][value="yes"]').click()
    Select(browser.find_element(By.NAME, "diagnosis")).select_by_value("mel")
    browser.find_element(
        By.CSS_SELECTOR, 'input[name="management"][value="refer_urgently"]'
    ).click()

    # Signing "refer urgently" without saying where is refused, in words.
    _click_and_wait_for_next_page(browser, browser.find_element(By.ID, "sign-review"))
    assert "Say where the patient is referred" in browser.page_source
    browser.find_element(By.NAME, "referral_to").send_keys("Plastic surgery, St Mary's")
    _click_and_wait_for_next_page(browser, browser.find_element(By.ID, "sign-review"))
    assert "Review signed." in browser.page_source
    referral = Referral.objects.get(analysis=analysis)
    assert "Plastic surgery, St Mary's" in browser.find_element(By.ID, "referral-links").text

    # Three weeks on, nobody has closed it: the dashboard says so and links to it.
    Referral.objects.filter(pk=referral.pk).update(
        due_on=timezone.localdate() - datetime.timedelta(days=7)
    )
    browser.get(live_server.url + reverse("diagnosis:dashboard"))
    tile = browser.find_element(By.ID, "tile-overdue-referrals")
    assert "alert" in tile.get_attribute("class")
    assert tile.find_element(By.TAG_NAME, "strong").text == "1"
    _shoot(browser, "dashboard")
    _click_and_wait_for_next_page(browser, tile)
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.referral-row")
    assert [row.get_attribute("data-referral") for row in rows] == [str(referral.pk)]
    assert "overdue" in rows[0].get_attribute("class")
    browser.get(live_server.url + reverse("diagnosis:referral_list"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr.referral-row")) == 3
    _shoot(browser, "referrals")

    # The doctor opens it and closes it with the outcome.
    browser.get(live_server.url + reverse("diagnosis:referral_detail", args=[referral.pk]))
    browser.find_element(By.NAME, "outcome").send_keys("Seen 12 May; wide local excision booked.")
    _shoot(browser, "referral-detail")
    _click_and_wait_for_next_page(browser, browser.find_element(By.ID, "close-referral"))
    assert "Referral closed." in browser.page_source
    assert browser.find_element(By.ID, "referral-status").text.startswith("Closed")
    referral.refresh_from_db()
    assert referral.status == "closed"
