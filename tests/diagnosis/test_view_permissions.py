"""Every portal page x every role x own clinic, other clinic, outsider and anonymous.

Anonymous visitors are sent to log in; a role the page does not admit gets 403; another
clinic's record is 404 (indistinguishable from a record that does not exist).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.urls import reverse

from accounts.models import Role
from diagnosis.models import AnalysisStatus
from tests import factories

CLINICAL = {Role.ADMIN, Role.DOCTOR, Role.STAFF}


@dataclass(frozen=True)
class Page:
    name: str
    args: tuple[str, ...] = ()  # names of objects in the `world` fixture
    method: str = "get"
    roles: frozenset = frozenset(CLINICAL)
    query: str = ""
    extra: tuple[str, ...] = ()  # literal URL arguments after the objects'

    def url(self, world: dict) -> str:
        args = [world[arg].pk for arg in self.args] + list(self.extra)
        return reverse(self.name, args=args) + self.query

    @property
    def names_an_object(self) -> bool:
        return bool(self.args)


PAGES = [
    Page("diagnosis:dashboard"),
    Page("diagnosis:dashboard_live"),
    Page("diagnosis:analysis_list"),
    Page("diagnosis:analysis_list", query="?show=failed"),
    Page("patients:list"),
    Page("patients:create"),
    Page("patients:detail", ("patient",)),
    Page("patients:edit", ("patient",)),
    Page("patients:research_consent", ("patient",), method="post"),
    Page("diagnosis:lesion_create", ("patient",)),
    Page("diagnosis:upload", ("patient",)),
    Page("diagnosis:lesion_detail", ("lesion",)),
    Page("diagnosis:lesion_edit", ("lesion",)),
    Page("diagnosis:lesion_compare", ("lesion",)),
    # Review by lesion signs a review: doctors only.
    Page("diagnosis:lesion_review", ("lesion",), roles=frozenset({Role.DOCTOR})),
    Page("diagnosis:analysis", ("analysis",)),
    Page("diagnosis:analysis_status", ("analysis",)),
    Page("diagnosis:analysis_retry", ("analysis",), method="post"),
    Page("diagnosis:analysis_override", ("analysis",), "post", frozenset({Role.DOCTOR})),
    Page("diagnosis:image", ("image",)),
    Page("diagnosis:image", ("image",), query="?size=thumb"),
    Page("diagnosis:heatmap", ("done",), extra=("top",)),
    Page("diagnosis:heatmap", ("done",), extra=("melanoma",)),
    Page("accounts:user_list", roles=frozenset({Role.ADMIN})),
    Page("accounts:user_create", roles=frozenset({Role.ADMIN})),
    Page("accounts:user_edit", ("colleague",), roles=frozenset({Role.ADMIN})),
    Page("accounts:user_email", ("colleague",), roles=frozenset({Role.ADMIN})),
    Page("accounts:user_deactivate", ("colleague",), "post", frozenset({Role.ADMIN})),
    Page("accounts:user_reactivate", ("colleague",), "post", frozenset({Role.ADMIN})),
    Page("accounts:user_resend", ("colleague",), "post", frozenset({Role.ADMIN})),
    Page("accounts:user_unlock", ("colleague",), "post", frozenset({Role.ADMIN})),
]
IDS = [page.name + page.query + "/".join(page.extra) for page in PAGES]


@pytest.fixture
def world(clinic):
    """One clinic's records: a patient with a lesion, an image, a failed analysis, a colleague."""
    patient = factories.PatientFactory(clinic=clinic)
    image = factories.DermoscopicImageFactory(
        lesion=factories.LesionFactory(patient=patient),
        thumbnail=factories.ContentFile(factories.jpeg_bytes((64, 48)), name="t.jpg"),
    )
    analysis = factories.AnalysisFactory(
        image=image, status=AnalysisStatus.FAILED, failure_reason="x"
    )
    colleague = factories.UserFactory(clinic=clinic)
    return {
        "patient": patient,
        "lesion": image.lesion,
        "image": image,
        "analysis": analysis,
        "done": factories.DoneAnalysisFactory(image=image),
        "colleague": colleague,
    }


def request(client, page: Page, world: dict):
    return getattr(client, page.method)(page.url(world))


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_anonymous_visitor_is_sent_to_log_in(client, world, page):
    response = request(client, page, world)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login") + "?next=")


@pytest.mark.parametrize("page", PAGES, ids=IDS)
@pytest.mark.parametrize("role", sorted(CLINICAL))
def test_own_clinic_member_is_admitted_by_role(client, clinic, world, page, role):
    client.force_login(factories.UserFactory(clinic=clinic, role=role))
    response = request(client, page, world)
    if role in page.roles:
        assert response.status_code in (200, 302), response.content[:300]
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("page", PAGES, ids=IDS)
@pytest.mark.parametrize("role", sorted(CLINICAL))
def test_other_clinic_member_never_reaches_this_clinics_records(
    client, other_clinic, world, page, role
):
    client.force_login(factories.UserFactory(clinic=other_clinic, role=role))
    response = request(client, page, world)
    if role not in page.roles:
        assert response.status_code == 403
    elif page.names_an_object:
        assert response.status_code == 404
    else:
        assert response.status_code in (200, 302)
        assert world["patient"].mrn.encode() not in response.content
        assert world["colleague"].email.encode() not in response.content


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_superuser_outside_any_clinic_is_refused(client, world, page):
    client.force_login(
        factories.UserFactory(clinic=None, role="", is_staff=True, is_superuser=True)
    )
    assert request(client, page, world).status_code == 403


def test_deactivated_user_cannot_open_a_page(client, clinic, world):
    user = factories.UserFactory(clinic=clinic, is_active=False)
    client.force_login(user)
    response = client.get(reverse("patients:detail", args=[world["patient"].pk]))
    assert response.status_code == 302


def test_every_portal_view_is_in_this_matrix_and_declares_its_roles():
    """A new page without the role decorator, or missing from PAGES, fails here."""
    from django.urls import URLResolver, get_resolver

    mine = {
        "diagnosis.views.analysis",
        "diagnosis.views.image",
        "diagnosis.views.lesion",
        "patients.views.records",
        "accounts.views.users",
    }
    covered = {page.name for page in PAGES}
    found = set()
    # An app's urls.py may group its namespaces under one un-namespaced include (patients/).
    resolvers = [
        inner
        for outer in get_resolver().url_patterns
        if isinstance(outer, URLResolver)
        for inner in ([outer] if outer.namespace else outer.url_patterns)
    ]
    for top in resolvers:
        if not isinstance(top, URLResolver) or top.namespace not in {
            "diagnosis",
            "patients",
            "accounts",
        }:
            continue
        for url in top.url_patterns:
            if getattr(url, "callback", None) is None or url.callback.__module__ not in mine:
                continue
            found.add(f"{top.namespace}:{url.name}")
            assert hasattr(url.callback, "allowed_roles"), f"{url.name} has no role check"
    assert found == covered
