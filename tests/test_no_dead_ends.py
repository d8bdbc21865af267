"""No dead ends (issue 13, item 6): error pages in the portal's layout with its menu and a way
back; the user menu's links; export and erasure on the patient page for those allowed; the
dashboard's tiles open the lists they count, and its live part is served alone for its
refresh; a favicon."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse

from diagnosis.models import AnalysisStatus
from melanoma_portal.pages import FALLBACK_500, server_error
from tests import factories

pytestmark = pytest.mark.django_db

MENU = "<nav>"  # the portal's menu, shown to a signed-in user
MENU_LINKS = ("menu-2fa", "menu-password", "menu-api-docs", "menu-admin")


def test_not_found_is_in_the_layout_with_a_way_back(client, staff, other_clinic):
    elsewhere = factories.PatientFactory(clinic=other_clinic)
    client.force_login(staff)

    response = client.get(reverse("patients:detail", args=[elsewhere.pk]))

    body = response.content.decode()
    assert response.status_code == 404
    assert MENU in body and 'id="back-to-dashboard"' in body
    assert elsewhere.last_name not in body


def test_forbidden_says_why_in_the_layout(client, staff):
    client.force_login(staff)

    response = client.get(reverse("diagnosis:worklist"))

    body = response.content.decode()
    assert response.status_code == 403
    assert MENU in body and "can do this" in body and 'id="back-to-dashboard"' in body


def test_server_error_page_is_in_the_layout(staff):
    request = RequestFactory().get("/")
    request.user = staff

    response = server_error(request)

    assert response.status_code == 500
    assert MENU in response.content.decode() and "Something went wrong" in response.content.decode()


def test_server_error_page_survives_a_layout_that_cannot_be_drawn(staff):
    class Broken:
        """A request whose user cannot be read (the session store is down, say)."""

        META: dict = {}
        method = "GET"
        path = "/"

        @property
        def user(self):
            raise RuntimeError("session store unreachable")

    response = server_error(Broken())

    assert response.status_code == 500
    assert response.content.decode() == FALLBACK_500


def test_an_expired_form_says_what_happened(staff):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)

    response = client.post(reverse("patients:create"), {"mrn": "X-1"})

    assert response.status_code == 403
    assert "The form had expired" in response.content.decode()


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("staff", {"menu-2fa", "menu-password"}),
        ("doctor", {"menu-2fa", "menu-password"}),
        ("admin", {"menu-2fa", "menu-password", "menu-api-docs", "menu-admin"}),
    ],
)
def test_user_menu_links(client, clinic, role, expected):
    user = factories.UserFactory(clinic=clinic, role=role)
    client.force_login(user)

    body = client.get(reverse("diagnosis:dashboard")).content.decode()

    assert {name for name in MENU_LINKS if f'id="{name}"' in body} == expected
    assert f'href="{reverse("mfa_index")}"' in body


@pytest.mark.parametrize(
    ("role", "export", "erase"),
    [("staff", False, False), ("doctor", True, False), ("admin", True, True)],
)
def test_patient_page_links_to_export_and_erasure_for_those_allowed(
    client, clinic, patient, role, export, erase
):
    client.force_login(factories.UserFactory(clinic=clinic, role=role))

    body = client.get(reverse("patients:detail", args=[patient.pk])).content.decode()

    assert (reverse("patient_rights:export", args=[patient.pk]) in body) is export
    assert (reverse("patient_rights:erase", args=[patient.pk]) in body) is erase


def test_each_dashboard_tile_opens_the_list_it_counts(client, staff, lesion):
    image = factories.DermoscopicImageFactory(lesion=lesion)
    factories.AnalysisFactory(image=image, status="failed", failure_reason="Could not read it.")
    factories.AnalysisFactory(image=image)  # queued
    factories.DoneAnalysisFactory(image=image)
    client.force_login(staff)

    dashboard = client.get(reverse("diagnosis:dashboard"))
    counts = dashboard.context["counts"]
    body = dashboard.content.decode()

    for show, count in (
        ("failed", counts["failed"]),
        ("queued", counts["queued"]),
        ("today", counts["analyses_today"]),
    ):
        href = f"{reverse('diagnosis:analysis_list')}?show={show}"
        assert f'href="{href}"' in body
        listed = client.get(href)
        assert listed.status_code == 200
        assert listed.context["page"].paginator.count == count == (3 if show == "today" else 1)
    failed = client.get(reverse("diagnosis:analysis_list"), {"show": "failed"})
    assert "Could not read it." in failed.content.decode()
    assert f'href="{reverse("patients:list")}"' in body


def test_the_live_part_of_the_dashboard_is_served_alone(client, staff, lesion):
    factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
    client.force_login(staff)

    response = client.get(reverse("diagnosis:dashboard_live"))

    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert 'id="live-queue-table"' in body and lesion.patient.full_name in body
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_favicon(client, staff):
    client.force_login(staff)
    icon = client.get("/favicon.ico")
    page = client.get(reverse("diagnosis:dashboard")).content.decode()

    assert icon.status_code == 200 and icon["Content-Type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # the ICO format's signature
    assert 'rel="icon"' in page


def test_a_filtered_list_keeps_its_filter_on_the_next_page(client, staff, lesion):
    """The shared pagination include carries the list's filter (show=failed) into its links."""
    for _ in range(26):
        factories.AnalysisFactory(
            image__lesion=lesion, status=AnalysisStatus.FAILED, failure_reason="x"
        )
    client.force_login(staff)

    body = client.get(reverse("diagnosis:analysis_list") + "?show=failed").content.decode()

    assert "Page 1 of 2" in body
    assert 'href="?show=failed&amp;page=2"' in body
