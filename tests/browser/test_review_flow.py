"""A doctor logs in, opens a high-risk result from the worklist, signs a review and downloads
the PDF report: the whole path through a real browser (headless Chromium) and live server."""

from __future__ import annotations

import io

import pypdf
import pytest
import requests
from django.urls import reverse

from diagnosis.models import Review
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _log_in(browser, live_server, email: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(live_server.url + "/accounts/login/")
    browser.find_element(By.NAME, "login").send_keys(email)
    browser.find_element(By.NAME, "password").send_keys(factories.PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(browser, 10).until(
        expected_conditions.none_of(expected_conditions.url_contains("/accounts/login/"))
    )


def _click_and_wait_for_next_page(browser, element) -> None:
    """Submit, then wait until the old page is gone: reading page_source straight after a click
    can still see the page that was submitted."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    element.click()
    WebDriverWait(browser, 10).until(expected_conditions.staleness_of(element))


def test_doctor_signs_a_review_and_downloads_the_pdf(browser, live_server, transactional_db):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    clinic = factories.ClinicFactory(name="Vienna Skin Clinic")
    doctor = factories.DoctorFactory(
        clinic=clinic, email="eva.gruber@vienna.example", full_name="Dr Eva Gruber"
    )
    patient = factories.PatientFactory(clinic=clinic, first_name="Anna", last_name="Huber")
    lesion = factories.LesionFactory(patient=patient)
    analysis = factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))

    _log_in(browser, live_server, doctor.email)

    # The worklist lists the high-risk result; the doctor opens it.
    browser.get(live_server.url + reverse("diagnosis:worklist"))
    review_url = reverse("diagnosis:review_edit", args=[analysis.pk])
    browser.find_element(By.CSS_SELECTOR, f'a[href="{review_url}"]').click()
    assert "Anna Huber" in browser.page_source

    # Signing without choosing the management is refused, and what was typed stays.
    browser.find_element(By.CSS_SELECTOR, 'input[name="agrees_with_ai"][value="yes"]').click()
    Select(browser.find_element(By.NAME, "diagnosis")).select_by_value("mel")
    browser.find_element(By.NAME, "notes").send_keys("Blue-white veil, atypical network.")
    _click_and_wait_for_next_page(browser, browser.find_element(By.ID, "sign-review"))
    assert "Choose the management." in browser.page_source
    assert browser.find_element(By.NAME, "notes").get_attribute("value") == (
        "Blue-white veil, atypical network."
    )
    assert not Review.objects.exists()

    browser.find_element(By.CSS_SELECTOR, 'input[name="management"][value="excise"]').click()
    _click_and_wait_for_next_page(browser, browser.find_element(By.ID, "sign-review"))
    assert "Review signed." in browser.page_source
    assert "Signed by" in browser.find_element(By.ID, "review-signed").text
    review = Review.objects.get()
    assert review.is_signed and review.signed_by_id == doctor.pk

    # Download the PDF with the browser's own session.
    pdf_url = browser.find_element(By.ID, "download-pdf").get_attribute("href")
    cookies = {cookie["name"]: cookie["value"] for cookie in browser.get_cookies()}
    response = requests.get(pdf_url, cookies=cookies, timeout=30)
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF")
    text = " ".join(
        " ".join(
            page.extract_text() for page in pypdf.PdfReader(io.BytesIO(response.content)).pages
        ).split()
    )
    assert "Electronically signed by Dr Eva Gruber" in text
    assert "NOT REVIEWED" not in text
    assert patient.mrn in text
