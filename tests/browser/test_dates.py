"""Every form with a date keeps it: saved, reopened and saved again through a real browser, at
desktop and phone sizes (issue 13, item 2). The date pickers (`<input type="date">`) read only
ISO dates; a form that wrote 01/03/2027 came back blank, and a reopened "Monitor" draft could
not be signed ("Monitoring needs a follow-up date")."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from diagnosis.models import Histopathology, Review
from patients.models import Patient
from tests import factories
from tests.browser.pages import SIZES, click_and_wait, log_in, set_date, shoot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _value(browser, name: str) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.NAME, name).get_property("value")


@pytest.mark.parametrize("size", list(SIZES))
def test_every_date_round_trips(browser, live_server, transactional_db, size):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.set_window_size(*SIZES[size])
    find = browser.find_element
    clinic = factories.ClinicFactory(name="Vienna Skin Clinic")
    doctor = factories.DoctorFactory(clinic=clinic, email="eva@vienna.example")
    log_in(browser, live_server.url, doctor.email)

    # 1. The patient form: date of birth.
    browser.get(live_server.url + reverse("patients:create"))
    find(By.NAME, "mrn").send_keys("V-2027-1")
    find(By.NAME, "first_name").send_keys("Anna")
    find(By.NAME, "last_name").send_keys("Huber")
    set_date(browser, find(By.NAME, "date_of_birth"), "1970-05-17")
    Select(find(By.NAME, "sex")).select_by_value("female")
    click_and_wait(browser, find(By.CSS_SELECTOR, "main form button[type=submit]"))
    patient = Patient.objects.get(mrn="V-2027-1")
    assert patient.date_of_birth == datetime.date(1970, 5, 17)
    browser.get(live_server.url + reverse("patients:edit", args=[patient.pk]))
    assert _value(browser, "date_of_birth") == "1970-05-17"
    shoot(browser, f"date-patient-form-{size}")
    click_and_wait(browser, find(By.CSS_SELECTOR, "main form button[type=submit]"))
    assert "Patient details saved." in browser.page_source
    patient.refresh_from_db()
    assert patient.date_of_birth == datetime.date(1970, 5, 17)

    # 2. The review form: a "Monitor" draft's follow-up date, reopened and signed.
    lesion = factories.LesionFactory(patient=patient)
    analysis = factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
    follow_up = timezone.localdate() + datetime.timedelta(days=90)
    browser.get(live_server.url + reverse("diagnosis:review_edit", args=[analysis.pk]))
    find(By.CSS_SELECTOR, 'input[name="agrees_with_ai"][value="yes"]').click()
    Select(find(By.NAME, "diagnosis")).select_by_value("mel")
    find(By.CSS_SELECTOR, 'input[name="management"][value="monitor"]').click()
    set_date(browser, find(By.NAME, "follow_up_on"), follow_up.isoformat())
    click_and_wait(browser, find(By.CSS_SELECTOR, 'button[value="save"]'))
    assert "Draft saved (not signed)." in browser.page_source
    browser.get(live_server.url + reverse("diagnosis:review_edit", args=[analysis.pk]))
    assert _value(browser, "follow_up_on") == follow_up.isoformat()
    shoot(browser, f"date-review-form-{size}")
    click_and_wait(browser, find(By.ID, "sign-review"))
    assert "Review signed." in browser.page_source, browser.find_element(By.TAG_NAME, "main").text
    assert Review.objects.get().follow_up_on == follow_up

    # 3. The amendment form starts from the signed version's date and keeps it.
    browser.get(live_server.url + reverse("diagnosis:review_amend", args=[analysis.pk]))
    assert _value(browser, "follow_up_on") == follow_up.isoformat()
    find(By.NAME, "amendment_reason").send_keys("Lesion size corrected in the notes.")
    find(By.NAME, "notes").send_keys("7 mm, not 5 mm.")
    shoot(browser, f"date-amend-form-{size}")
    click_and_wait(browser, find(By.ID, "sign-review"))
    assert "Amendment signed." in browser.page_source
    assert Review.objects.get(version=2).follow_up_on == follow_up

    # 4. The histology form: the report's date.
    reported = timezone.localdate() - datetime.timedelta(days=7)
    browser.get(live_server.url + reverse("diagnosis:histopathology_edit", args=[lesion.pk]))
    Select(find(By.NAME, "diagnosis")).select_by_value("mel")
    set_date(browser, find(By.NAME, "reported_on"), reported.isoformat())
    find(By.NAME, "lab_reference").send_keys("H-2027-17")
    click_and_wait(browser, find(By.CSS_SELECTOR, "#histopathology-form button[type=submit]"))
    assert "Histology result recorded." in browser.page_source
    assert _value(browser, "reported_on") == reported.isoformat()
    shoot(browser, f"date-histology-form-{size}")
    click_and_wait(browser, find(By.CSS_SELECTOR, "#histopathology-form button[type=submit]"))
    assert Histopathology.objects.get().reported_on == reported
