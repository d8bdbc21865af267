"""Headless Debian Chromium for the browser tests, against pytest-django's live server.

The live server's media-handler patch lives in tests/conftest.py, for the whole session.
"""

import shutil

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from tests.nginx import nginx_in_front

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Background networking off: this machine has no network, and Chromium's attempts to reach
# Google's services otherwise fail loudly at every start.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1600",
    # The nginx variant's certificate is self-signed (bin/serve-nginx).
    "--ignore-certificate-errors",
)


@pytest.fixture
def browser():
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install -y ...)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


@pytest.fixture(params=["runserver", "nginx"])
def site_url(request, settings) -> str:
    """Where the browser goes: pytest-django's live server, or the production web tier
    (nginx with TLS in front of gunicorn with the production settings, bin/serve-nginx)."""
    if request.param == "runserver":
        return request.getfixturevalue("live_server").url
    # Users made by the test must be able to log in under production's password hashers.
    settings.PASSWORD_HASHERS = [f"{PBKDF2PasswordHasher.__module__}.PBKDF2PasswordHasher"]
    site = request.getfixturevalue("_nginx_site")
    return site.https


@pytest.fixture
def _nginx_site():
    with nginx_in_front() as site:
        yield site
