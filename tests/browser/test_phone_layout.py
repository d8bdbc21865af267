"""Every page fits a phone (issue 13, item 5): each role visits every page it may open, at
390x844 (and again at desktop size), and no page scrolls sideways
(`document.documentElement.scrollWidth <= innerWidth`). At 390 px wide 7 of 10 pages
overflowed: the worklist was 847 px, with risk, status and the Review link off-screen.

One browser session per role, visiting every page; the records carry long names and long
words, which must wrap. The pages come from the permission matrix (what each role may use),
so a new page is visited without touching this test.
"""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.audit import audit_record
from tests import factories
from tests.browser.pages import DESKTOP, PHONE, log_in, overflow, shoot, too_wide_elements
from tests.security.test_permission_matrix import ACCESS, ADMIN, DOCTOR, ROUTES, STAFF, World

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Not pages: files, JSON and actions that only answer a POST.
NOT_PAGES = {
    "diagnosis:analysis_status",
    "diagnosis:dashboard_live",
    "diagnosis:heatmap",
    "diagnosis:image",
    "diagnosis:analysis_retry",
    "reports:analysis_pdf",
    "patient_rights:export",
    "accounts:user_deactivate",
    "accounts:user_reactivate",
    "accounts:user_resend",
    "accounts:user_unlock",
    "api_tokens:issue",
    "api_tokens:revoke",
    "diagnosis:referral_close",
    "diagnosis:analysis_override",
    "patients:research_consent",
}
# Pages outside the permission matrix (allauth's, the error pages), for every signed-in role.
EXTRA_PAGES = [
    "/accounts/password/change/",
    "/accounts/2fa/",
    "/accounts/email/",
    "/no-such-page/",
]
LONG_NAME = "Maximiliana-Josephine von Wolkenstein-Rodenegg-Trostburg"
LONG_WORD = "Dermatologischeuniversitätsklinikambulanzfürpigmentläsionen"


class PhoneWorld(World):
    """The matrix's clinic, with names and words long enough to break a careless layout."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.patient.first_name, self.patient.last_name = LONG_NAME.split(" ", 1)
        self.patient.mrn = "VIE-2027-000000000123456789"
        self.patient.email = f"{LONG_WORD.lower()}@example-hospital-network.example"
        self.patient.address = f"{LONG_WORD}strasse 1234\nA-1090 Wien"
        self.patient.save()
        self.lesion.label = f"left scapula, 6 mm, {LONG_WORD}"
        self.lesion.save()
        self.colleague.full_name = LONG_NAME
        self.colleague.save()
        self.referral.destination = f"Plastic surgery, {LONG_WORD}, St Mary's"
        self.referral.save()
        factories.HistopathologyFactory(
            lesion=self.lesion, lab_reference=f"H-{LONG_WORD}", notes=LONG_WORD
        )
        # A second, overdue referral and a queued analysis fill the lists and the dashboard.
        second = factories.DoneAnalysisFactory(
            image=factories.DermoscopicImageFactory(lesion=self.lesion)
        )
        factories.ReferralFactory(
            analysis=second, due_on=timezone.localdate() - datetime.timedelta(days=3)
        )
        factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=self.lesion))
        audit_record(action="patient.view", user=self.users[ADMIN], obj=self.patient)


def _pages(role: str, world: PhoneWorld) -> list[str]:
    urls = []
    for route in ROUTES:
        if route.is_api or route.name in NOT_PAGES or role not in ACCESS.get(route.name, ()):
            continue
        urls.append(reverse(route.name, kwargs=world.kwargs_for(route)))
    return urls + EXTRA_PAGES


@pytest.mark.parametrize("role", [STAFF, DOCTOR, ADMIN])
def test_no_page_scrolls_sideways_on_a_phone(browser, live_server, transactional_db, role):
    world = PhoneWorld("Universitätsklinik für Dermatologie, Wien")
    # Amendable: the review page of a signed review shows its history.
    log_in(browser, live_server.url, world.users[role].email)

    too_wide = []
    pages = _pages(role, world)
    for path in pages:
        browser.set_window_size(*PHONE)
        browser.get(live_server.url + path)
        excess = overflow(browser)
        if excess > 0:
            too_wide.append(
                f"{path}: {excess} px too wide at {PHONE[0]}: {too_wide_elements(browser)}"
            )
        name = path.strip("/").replace("/", "-") or "dashboard"
        shoot(browser, f"phone-{role}-{name}")
        browser.set_window_size(*DESKTOP)
        shoot(browser, f"desktop-{role}-{name}")
        excess = overflow(browser)
        if excess > 0:
            too_wide.append(
                f"{path}: {excess} px too wide at {DESKTOP[0]}: {too_wide_elements(browser)}"
            )
    assert len(pages) > 10
    assert not too_wide, "\n".join(too_wide)
