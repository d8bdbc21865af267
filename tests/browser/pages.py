"""Small helpers the browser tests share: log in, submit and wait, set a date picker, keep a
screenshot. Window sizes: DESKTOP and PHONE (an iPhone 12-14's 390x844 CSS pixels)."""

from __future__ import annotations

import os
from pathlib import Path

from tests import factories

DESKTOP = (1280, 900)
PHONE = (390, 844)
SIZES = {"desktop": DESKTOP, "phone": PHONE}


def log_in(browser, base_url: str, email: str, password: str = factories.PASSWORD) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(base_url + "/accounts/login/")
    browser.find_element(By.NAME, "login").send_keys(email)
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(browser, 10).until(
        expected_conditions.none_of(expected_conditions.url_contains("/accounts/login/"))
    )


def click_and_wait(browser, element) -> None:
    """Click, then wait until the old page is gone (its elements go stale)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    def gone(_browser) -> bool:
        # Chromium sometimes reports a detached node as an inspector error ("Node with given
        # id does not belong to the document") instead of a stale reference: gone all the same.
        try:
            return expected_conditions.staleness_of(element)(_browser)
        except WebDriverException as error:
            if "does not belong to the document" in str(error):
                return True
            raise

    element.click()
    WebDriverWait(browser, 10).until(gone)


def set_date(browser, element, iso: str) -> None:
    """Pick a date in an `<input type="date">`. What a person types depends on the browser's
    locale (mm/dd/yyyy or dd/mm/yyyy); the picker's value is ISO in every locale."""
    browser.execute_script(
        "arguments[0].value = arguments[1];"
        "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));"
        "arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
        element,
        iso,
    )


def shoot(browser, name: str) -> None:
    """SCREENSHOT_DIR=... keeps a picture of the page as it is now (the window's size)."""
    shots = os.environ.get("SCREENSHOT_DIR")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(shots) / f"{name}.png"))


def shoot_both_sizes(browser, name: str) -> None:
    """SCREENSHOT_DIR=... keeps the whole page at desktop width, then at a phone's, each window
    as tall as the page; the window goes back to the browser fixture's 1280x1600 after."""
    shots = os.environ.get("SCREENSHOT_DIR")
    if not shots:
        return
    Path(shots).mkdir(parents=True, exist_ok=True)
    for label, (width, _height) in SIZES.items():
        browser.set_window_size(width, DESKTOP[1])
        page_height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(width, max(page_height + 120, PHONE[1]))
        browser.save_screenshot(str(Path(shots) / f"{name}-{label}.png"))
    browser.set_window_size(1280, 1600)


def overflow(browser) -> int:
    """How many CSS pixels the page is wider than the window (0 or less: no sideways
    scrolling). Against the narrower of innerWidth and the page's client width: a desktop
    browser's scroll bar takes room that a phone's overlay scroll bar does not."""
    return browser.execute_script(
        "const page = document.documentElement;"
        "return page.scrollWidth - Math.min(window.innerWidth, page.clientWidth);"
    )


def too_wide_elements(browser, limit: int = 5) -> list[str]:
    """The outermost elements reaching past the window's right edge, to say what overflows."""
    return browser.execute_script(
        """
        const width = window.innerWidth, found = [];
        for (const el of document.body.querySelectorAll('*')) {
          if (el.getBoundingClientRect().right <= width + 1) continue;
          if (found.some((outer) => outer.contains(el))) continue;
          found.push(el);
        }
        return found.slice(0, arguments[0]).map((el) =>
          el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
          (typeof el.className === 'string' && el.className
            ? '.' + el.className.split(' ').join('.') : '') +
          ' (' + Math.round(el.getBoundingClientRect().right) + ' px)');
        """,
        limit,
    )
