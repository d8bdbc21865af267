"""No dead ends, through a real browser at desktop and phone sizes (issue 13, item 6): the
dashboard's live queue fills by itself, its tiles open their lists, the user menu leads to
two-factor set-up and (for a clinic admin) the API documentation, the patient page offers
export and erasure, and 403 and 404 keep the menu and a way back."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests import factories
from tests.browser.pages import SIZES, click_and_wait, log_in, shoot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("size", list(SIZES))
def test_a_clinic_admin_finds_a_way_on_from_every_page(
    browser, live_server, transactional_db, settings, size
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    settings.DASHBOARD_REFRESH_S = 1
    browser.set_window_size(*SIZES[size])
    find = browser.find_element
    clinic = factories.ClinicFactory(name="Vienna Skin Clinic")
    admin = factories.ClinicAdminFactory(clinic=clinic, email="boss@vienna.example")
    patient = factories.PatientFactory(clinic=clinic, first_name="Anna", last_name="Huber")
    lesion = factories.LesionFactory(patient=patient)
    factories.AnalysisFactory(
        image=factories.DermoscopicImageFactory(lesion=lesion),
        status="failed",
        failure_reason="The stored image could not be read; please upload it again.",
    )
    log_in(browser, live_server.url, admin.email)

    # The live queue fills by itself: an upload elsewhere appears without a reload.
    assert "Nothing waiting." in find(By.ID, "dashboard-live").text
    browser.execute_script("window.notReloaded = true;")
    factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
    WebDriverWait(browser, 10).until(lambda driver: driver.find_elements(By.ID, "live-queue-table"))
    assert "Anna Huber" in find(By.ID, "live-queue-table").text
    assert browser.execute_script("return window.notReloaded === true;")
    assert find(By.ID, "count-queued").text == "1"
    shoot(browser, f"dead-ends-dashboard-{size}")

    # A tile opens the list it counts.
    click_and_wait(browser, find(By.ID, "tile-failed"))
    assert "show=failed" in browser.current_url
    assert "could not be read" in find(By.ID, "analyses").text
    shoot(browser, f"dead-ends-failed-list-{size}")

    # The user menu: two-factor set-up, and the API documentation for a clinic admin.
    find(By.CSS_SELECTOR, ".user-menu summary").click()
    assert find(By.ID, "menu-api-docs").get_attribute("href").endswith(reverse("api:docs"))
    shoot(browser, f"dead-ends-user-menu-{size}")
    click_and_wait(browser, find(By.ID, "menu-2fa"))
    assert browser.current_url.endswith(reverse("mfa_index"))

    # The patient page offers export and erasure.
    browser.get(live_server.url + reverse("patients:detail", args=[patient.pk]))
    assert find(By.ID, "patient-export").is_displayed()
    assert find(By.ID, "patient-erase").is_displayed()
    shoot(browser, f"dead-ends-patient-{size}")

    # 404 and 403 keep the menu and a way back.
    browser.get(live_server.url + "/patients/999999/")
    assert find(By.ID, "error-404").is_displayed() and find(By.CSS_SELECTOR, "header nav")
    shoot(browser, f"dead-ends-404-{size}")
    click_and_wait(browser, find(By.ID, "back-to-dashboard"))
    assert find(By.ID, "dashboard-live")
    browser.get(live_server.url + reverse("diagnosis:histopathology_edit", args=[lesion.pk]))
    assert "Only a doctor can do this." in find(By.ID, "error-403").text
    assert find(By.CSS_SELECTOR, "header nav").is_displayed()
    shoot(browser, f"dead-ends-403-{size}")
