"""A member of staff's whole path in headless Chromium, with a real worker and the real model:
log in, register a patient, record a lesion, upload an image, wait, read the result."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings

from tests import factories
from tests.worker import celery_worker, require_shared_services

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SAMPLE = Path(settings.BASE_DIR) / "samples" / "mel_ISIC_0024554.jpg"


def wait_for_text(driver, selector: str, text: str, timeout: float = 15) -> None:
    """Wait until the current document's `selector` contains `text`.

    Read in one script call inside whichever document is loaded, so a click's navigation can
    never leave the test holding an element of the page it left (stale or 'node does not
    belong to the document' errors while Chromium swaps pages).
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    script = "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;"

    def shown(driver) -> bool:
        try:
            content = driver.execute_script(script, selector)
        except WebDriverException:
            return False
        return content is not None and text in content

    WebDriverWait(driver, timeout).until(shown, f"{selector!r} never showed {text!r}")


def test_staff_uploads_an_image_and_reads_the_result(site_url, browser):
    require_shared_services()
    if not (Path(settings.ML_MODELS_ROOT) / "CURRENT").exists():
        pytest.skip(f"no trained model installed: {settings.ML_MODELS_ROOT}/CURRENT is missing")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    staff = factories.UserFactory(
        clinic=factories.ClinicFactory(name="Browser Clinic"), email="nurse@browser.example"
    )
    find = browser.find_element

    with celery_worker(purge=True) as worker:
        # Log in with email and password.
        browser.get(site_url + "/")
        find(By.NAME, "login").send_keys(staff.email)
        find(By.NAME, "password").send_keys(factories.PASSWORD)
        find(By.CSS_SELECTOR, "form button[type=submit]").click()
        WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.ID, "count-patients")))

        # Register a patient.
        find(By.LINK_TEXT, "Patients").click()
        find(By.LINK_TEXT, "New patient").click()
        find(By.NAME, "mrn").send_keys("E2E-0001")
        find(By.NAME, "first_name").send_keys("Erika")
        find(By.NAME, "last_name").send_keys("Mustermann")
        browser.execute_script("arguments[0].value = '1968-02-29'", find(By.NAME, "date_of_birth"))
        Select(find(By.NAME, "sex")).select_by_visible_text("Female")
        Select(find(By.NAME, "fitzpatrick_skin_type")).select_by_visible_text("II")
        find(By.XPATH, "//button[text()='Save patient']").click()
        wait_for_text(browser, "h1", "Erika Mustermann")

        # Record a lesion; the upload form opens with it chosen.
        find(By.LINK_TEXT, "Record a lesion").click()
        Select(find(By.NAME, "anatomic_site")).select_by_visible_text("Face")
        find(By.NAME, "label").send_keys("left temple")
        find(By.XPATH, "//button[text()='Save lesion']").click()
        wait_for_text(browser, "input[name=image]", "")  # the upload page has loaded
        assert Select(find(By.NAME, "lesion")).first_selected_option.text == "Face - left temple"

        # Upload the image and wait for the page to show the result by itself.
        find(By.NAME, "image").send_keys(str(SAMPLE))
        find(By.ID, "upload-button").click()
        WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.ID, "analysis-result")))
        try:
            WebDriverWait(browser, 180).until(
                lambda driver: (
                    driver.find_elements(By.ID, "top-class")
                    or driver.find_elements(By.ID, "failure-reason")
                )
            )
        except Exception:
            pytest.fail(f"no result in the page; worker log:\n{worker.log()[-3000:]}")

    assert not browser.find_elements(By.ID, "failure-reason"), find(By.ID, "failure-reason").text
    rows = browser.find_elements(By.CSS_SELECTOR, "table.probabilities tbody tr")
    assert len(rows) == 7
    page = find(By.TAG_NAME, "body").text
    for name in ("Melanoma", "Melanocytic nevus", "Basal cell carcinoma", "Vascular lesion"):
        assert name in page
    assert "AI-assisted assessment, not a diagnosis. Consult a dermatologist." in page
    assert "AI suggestion" in page
    # The patient has a date of birth and a sex, the lesion a site: a v2 model reads all three.
    assert "read: image, age, sex, site" in page or "read: image only" in page
    assert "%" in find(By.ID, "melanoma-probability").text
    # A model with triage shows the level and its reason; one without, the melanoma tier.
    if browser.find_elements(By.ID, "triage-level"):
        assert find(By.ID, "triage-level").text in ("Urgent", "Soon", "Routine")
        assert find(By.ID, "triage-reason").text
        assert "What it does not mean:" in page
    else:
        assert find(By.ID, "risk-tier").text in ("Low", "Moderate", "High")
    # The image is shown through the permission-checked view, and it loaded.
    image = find(By.CSS_SELECTOR, "img.lesion-image")
    assert "/images/" in image.get_attribute("src")
    assert browser.execute_script("return arguments[0].naturalWidth", image) > 0
    # SCREENSHOT_DIR=... keeps pictures of the result page to look at by eye.
    shots = os.environ.get("SCREENSHOT_DIR")
    if shots:
        browser.save_screenshot(str(Path(shots) / "result-desktop.png"))
        browser.set_window_size(390, 844)
        browser.save_screenshot(str(Path(shots) / "result-phone.png"))
