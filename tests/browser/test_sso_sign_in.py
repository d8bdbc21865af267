"""A member of staff signs in with the hospital's identity provider, the way a person does: the
portal's log-in page, the hospital's button, the hospital's own log-in form (a real OpenID
Connect provider on localhost, tests/oidc), and back to the clinic's dashboard."""

from __future__ import annotations

import pytest

from accounts.services.sign_on import clinic_sign_on_save
from tests import factories
from tests.oidc.fixtures import (
    HOSPITAL_PASSWORD,
    callback_path,
    oidc_provider,  # noqa: F401 - the fixture
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_staff_sign_in_with_the_hospital_and_land_on_the_dashboard(
    browser,
    live_server,
    transactional_db,
    oidc_provider,  # noqa: F811
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    clinic = factories.ClinicFactory(name="Vienna Skin Clinic")
    admin = factories.ClinicAdminFactory(clinic=clinic, email="head@vienna.example")
    staff = factories.UserFactory(clinic=clinic, email="staff@vienna.example", full_name="Lena")
    client_id, secret = oidc_provider.register_client(live_server.url + callback_path(clinic.pk))
    clinic_sign_on_save(
        actor=admin,
        clinic=clinic,
        display_name="Vienna General Hospital",
        issuer=oidc_provider.issuer,
        client_id=client_id,
        client_secret=secret,
        allowed_email_domains=["vienna.example"],
        enabled=True,
    )

    browser.get(live_server.url + "/accounts/login/")
    browser.find_element(By.LINK_TEXT, "Vienna General Hospital").click()
    browser.find_element(By.ID, "sso-continue").click()
    # The hospital's own page.
    WebDriverWait(browser, 10).until(expected_conditions.url_contains(oidc_provider.issuer))
    browser.find_element(By.ID, "login").send_keys(staff.email)
    browser.find_element(By.ID, "password").send_keys(HOSPITAL_PASSWORD)
    browser.find_element(By.ID, "sign-in").click()

    WebDriverWait(browser, 15).until(expected_conditions.url_to_be(live_server.url + "/"))
    page = browser.page_source
    assert "Dashboard" in page
    assert "Lena" in page and "Vienna Skin Clinic" in page
