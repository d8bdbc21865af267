"""The image gate in a real browser, with a real worker and the shipped model: a member of staff
uploads a photograph that is not dermoscopy and reads the refusal; a doctor overrides it with a
reason and reads the result, marked outside validated use.

SCREENSHOT_DIR=... keeps pictures of both pages at desktop and phone sizes.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from diagnosis import presentation
from ml.nonderm import non_dermoscopic_images
from tests import factories
from tests.browser.pages import log_in, shoot_both_sizes
from tests.browser.test_end_to_end import wait_for_text
from tests.worker import celery_worker, require_shared_services

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

REASON = "Dermoscopy taken with the clinic's new polarised device; lesion checked by eye."


def _require_gated_model() -> None:
    current = Path(settings.ML_MODELS_ROOT) / "CURRENT"
    if not current.exists():
        pytest.skip(f"no trained model installed: {current} is missing")
    if not (current.parent / current.read_text().strip() / "gate.json").exists():
        pytest.skip("the installed model ships no image gate")


def _wait_for_any(browser, *ids: str, timeout: float = 180) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout).until(
        lambda driver: any(driver.find_elements(By.ID, element_id) for element_id in ids)
    )


def test_a_photo_that_is_not_dermoscopy_is_refused_and_a_doctor_overrides_it(
    live_server, browser, tmp_path
):
    require_shared_services()
    _require_gated_model()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    clinic = factories.ClinicFactory(name="Browser Clinic")
    staff = factories.UserFactory(clinic=clinic, email="nurse@browser.example")
    doctor = factories.DoctorFactory(
        clinic=clinic, email="doctor@browser.example", full_name="Dr Eva Gruber"
    )
    patient = factories.PatientFactory(clinic=clinic, first_name="Erika", last_name="Muster")
    lesion = factories.LesionFactory(patient=patient, anatomic_site="face", label="left temple")
    cat = next(image for name, _kind, image in non_dermoscopic_images() if name == "cat")
    photo = tmp_path / "cat.jpg"
    buffer = io.BytesIO()
    cat.save(buffer, "JPEG", quality=92)
    photo.write_bytes(buffer.getvalue())
    find = browser.find_element

    with celery_worker(purge=True) as worker:
        # Staff upload the photograph the way they upload a lesion.
        log_in(browser, live_server.url, staff.email)
        upload = reverse("diagnosis:upload", args=[patient.pk])
        browser.get(f"{live_server.url}{upload}?lesion={lesion.pk}")
        assert Select(find(By.NAME, "lesion")).first_selected_option.text == "Face - left temple"
        find(By.NAME, "image").send_keys(str(photo))
        find(By.ID, "upload-button").click()
        try:
            _wait_for_any(browser, "gate-refusal", "top-class", "failure-reason")
        except Exception:
            pytest.fail(f"no outcome in the page; worker log:\n{worker.log()[-3000:]}")

        # The refusal: why, and what to do; nothing of a prediction; no override for staff.
        assert not browser.find_elements(By.ID, "top-class"), "the photo was analysed"
        refusal = find(By.ID, "gate-refusal").text
        assert refusal == (
            "Not analysed: this does not look like a dermoscopic image of a skin lesion."
        )
        advice = find(By.ID, "gate-advice").text
        assert presentation.GATE_ADVICE in advice
        page = find(By.TAG_NAME, "main").text
        assert "%" not in page and "Melanoma" not in page and "AI suggestion" not in page
        assert not browser.find_elements(By.CSS_SELECTOR, "table.probabilities")
        assert not browser.find_elements(By.ID, "override-form")
        analysis_url = browser.current_url
        shoot_both_sizes(browser, "refusal-staff")

        # A doctor reads the same page, opens the override and gives a reason.
        browser.delete_all_cookies()  # out of the staff session
        log_in(browser, live_server.url, doctor.email)
        browser.get(analysis_url)
        find(By.CSS_SELECTOR, "details.override summary").click()
        shoot_both_sizes(browser, "refusal-doctor")
        find(By.NAME, "reason").send_keys(REASON)
        find(By.ID, "override-button").click()
        try:
            _wait_for_any(browser, "outside-validated-use", "failure-reason")
        except Exception:
            pytest.fail(f"no result after the override; worker log:\n{worker.log()[-3000:]}")

    assert not browser.find_elements(By.ID, "failure-reason"), find(By.ID, "failure-reason").text
    mark = find(By.ID, "outside-validated-use").text
    assert "OUTSIDE VALIDATED USE" in mark.upper()
    assert "Dr Eva Gruber" in mark and REASON in mark
    assert "this does not look like a dermoscopic image" in mark
    assert find(By.ID, "top-class").text  # the prediction, shown with its mark
    assert find(By.ID, "triage-level").text in ("Urgent", "Soon", "Routine")
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.probabilities tbody tr")) == 7
    wait_for_text(browser, "#analysis-result", "AI-assisted assessment, not a diagnosis.")
    shoot_both_sizes(browser, "overridden-result")
