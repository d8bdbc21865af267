"""The idle log-out, through a real browser at desktop and phone sizes (issue 13, item 7):
a warning with a countdown before the log-out, "Stay signed in" that works, typing that counts
as being there, and a half-typed form that comes back after logging in again.

The idle timeout is shortened to 8 seconds (the warning then comes 4 seconds before)."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from tests import factories
from tests.browser.pages import SIZES, click_and_wait, log_in, shoot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_S = 8


@pytest.mark.parametrize("size", list(SIZES))
def test_idle_warning_stay_signed_in_and_no_lost_form(
    browser, live_server, transactional_db, settings, size
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    settings.SESSION_IDLE_TIMEOUT_S = TIMEOUT_S
    browser.set_window_size(*SIZES[size])
    find = browser.find_element
    wait = WebDriverWait(browser, 3 * TIMEOUT_S)
    clinic = factories.ClinicFactory(name="Vienna Skin Clinic")
    doctor = factories.DoctorFactory(clinic=clinic, email="eva@vienna.example")
    patient = factories.PatientFactory(clinic=clinic, first_name="Anna", last_name="Huber")
    log_in(browser, live_server.url, doctor.email)

    # 1. Left alone, the page warns before the log-out; "Stay signed in" keeps the session.
    browser.get(live_server.url + reverse("patients:detail", args=[patient.pk]))
    loaded = time.monotonic()
    wait.until(ec.visibility_of_element_located((By.ID, "idle-warning")))
    assert "logged out in 0:0" in find(By.ID, "idle-warning").text
    shoot(browser, f"idle-warning-{size}")
    find(By.ID, "stay-signed-in").click()
    wait.until(ec.invisibility_of_element_located((By.ID, "idle-warning")))
    time.sleep(max(0.0, TIMEOUT_S + 1 - (time.monotonic() - loaded)))  # past the first deadline
    browser.get(live_server.url + reverse("patients:list"))
    assert "/accounts/login/" not in browser.current_url, "Stay signed in did not keep the session"

    # 2. Someone typing is there: no warning, and the form is saved well past the timeout.
    browser.get(live_server.url + reverse("patients:edit", args=[patient.pk]))
    phone_field = find(By.NAME, "phone")
    phone_field.clear()
    for digit in "0664 123 4567":
        phone_field.send_keys(digit)
        time.sleep(TIMEOUT_S / 20)
    time.sleep(TIMEOUT_S / 2)
    assert not find(By.ID, "idle-warning").is_displayed()
    phone_field.send_keys("8")
    time.sleep(TIMEOUT_S / 2 + 1)
    click_and_wait(browser, find(By.CSS_SELECTOR, "main form button[type=submit]"))
    assert "Patient details saved." in browser.page_source
    patient.refresh_from_db()
    assert patient.phone == "0664 123 45678"

    # 3. A half-typed form whose author walked away is kept and comes back after logging in.
    browser.get(live_server.url + reverse("patients:edit", args=[patient.pk]))
    address = find(By.NAME, "address")
    address.clear()
    address.send_keys("Spitalgasse 23, 1090 Wien")
    wait.until(ec.visibility_of_element_located((By.ID, "idle-draft-note")))
    wait.until(ec.url_contains("/accounts/login/"))
    assert "without activity" in browser.page_source
    shoot(browser, f"idle-logged-out-{size}")
    find(By.NAME, "login").send_keys(doctor.email)
    find(By.NAME, "password").send_keys(factories.PASSWORD)
    click_and_wait(browser, find(By.CSS_SELECTOR, "main form button[type=submit]"))
    assert browser.current_url.endswith(reverse("patients:edit", args=[patient.pk]))
    wait.until(ec.visibility_of_element_located((By.ID, "draft-restored")))
    assert find(By.NAME, "address").get_property("value") == "Spitalgasse 23, 1090 Wien"
    shoot(browser, f"idle-draft-restored-{size}")
    click_and_wait(browser, find(By.CSS_SELECTOR, "main form button[type=submit]"))
    patient.refresh_from_db()
    assert patient.address == "Spitalgasse 23, 1090 Wien"
