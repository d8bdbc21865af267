"""The Django admin's permission matrix, generated from the admin site's own URLs.

Every named admin URL is requested by an anonymous visitor, a clinic's staff member, doctor and
clinic admin (each of both clinics), and a site-wide superuser, with object ids of the asker's
own clinic and of the other clinic. Clinic admins and superusers sign in as a person does, with
a code from their authenticator app (the admin admits no one without it).

Expected:
- anonymous: sent to log in; staff and doctors: refused (the admin's log-in door answers 403);
- a clinic admin: the models of KINDS marked visible, their own clinic's records only, read
  only; another clinic's record is "not found" exactly like a missing id; third-party models
  (groups, e-mail addresses, authenticators) not at all;
- a superuser: every clinic; clinical records and the audit trail read-only all the same.

A URL of a kind not declared below fails `test_every_admin_url_is_in_the_matrix`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.urls import URLPattern, URLResolver, reverse

from accounts.audit import audit_record
from accounts.models import AuditEvent
from tests import factories
from tests.security.test_permission_matrix import ADMIN, DOCTOR, STAFF, World

# Models a clinic admin may view (scoped to their clinic), read-only.
CLINIC_ADMIN_VISIBLE = {
    "accounts.clinic",
    "accounts.user",
    "accounts.auditevent",
    "patients.patient",
    "diagnosis.lesion",
    "diagnosis.dermoscopicimage",
    "diagnosis.analysis",
    "diagnosis.review",
    "diagnosis.histopathology",
    "diagnosis.referral",
}
# Read-only for superusers too: every write of these goes through an audited service.
READ_ONLY_FOR_ALL = CLINIC_ADMIN_VISIBLE - {"accounts.clinic", "accounts.user"}
# What each kind of model URL is, by the suffix of its name.
MODEL_URL_KINDS = ("changelist", "add", "change", "history", "delete")
SITE_URLS = {
    "index",
    "login",
    "logout",
    "password_change",
    "password_change_done",
    "autocomplete",
    "jsi18n",
    "view_on_site",
    "app_list",
    "auth_user_password_change",  # the admin's "set this user's password" form
    "diagnosis_modelversion_status",  # the model registry's status form: superusers only
}
# An id no record has, for URLs of models the test makes no record of (the admin refuses a
# clinic admin before it looks the id up).
MISSING = 999999


@dataclass(frozen=True)
class AdminRoute:
    name: str
    model: str | None  # "app_label.model_name" for a model's URL
    kind: str


def _admin_routes() -> list[AdminRoute]:
    labels = {
        f"{m._meta.app_label}_{m._meta.model_name}": m._meta.label_lower
        for m in admin.site._registry
    }
    routes = []

    def walk(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern) and pattern.name:
                match = re.fullmatch(r"(\w+?)_(" + "|".join(MODEL_URL_KINDS) + ")", pattern.name)
                if match and match.group(1) in labels:
                    routes.append(AdminRoute(pattern.name, labels[match.group(1)], match[2]))
                else:
                    routes.append(AdminRoute(pattern.name, None, pattern.name))

    walk(admin.site.get_urls())
    return routes


ROUTES = _admin_routes()


def test_every_admin_url_is_in_the_matrix():
    unknown = [r.name for r in ROUTES if r.model is None and r.kind not in SITE_URLS]
    assert not unknown, f"Declare these admin URLs in SITE_URLS: {unknown}"
    models = {r.model for r in ROUTES if r.model}
    assert CLINIC_ADMIN_VISIBLE <= models, "a model the matrix expects is not in the admin"


class AdminWorld(World):
    """One clinic's records, with one of each kind the admin lists."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.histopathology = factories.HistopathologyFactory(lesion=self.lesion)
        self.event = audit_record(
            action="patient.view", user=self.users[ADMIN], obj=self.patient, marker=name
        )
        self.group = Group.objects.create(name=f"Auditors of {name}")
        factories.activate_totp(self.colleague)

    def object_for(self, model: str):
        """This clinic's record of `model`, or None for a model the test makes none of."""
        return {
            "accounts.clinic": self.clinic,
            "accounts.user": self.colleague,
            "accounts.auditevent": self.event,
            "patients.patient": self.patient,
            "diagnosis.lesion": self.lesion,
            "diagnosis.dermoscopicimage": self.image,
            "diagnosis.analysis": self.analysis,
            "diagnosis.review": self.review,
            "diagnosis.histopathology": self.histopathology,
            "diagnosis.referral": self.referral,
            "auth.group": self.group,
            "account.emailaddress": self.colleague.emailaddress_set.get(),
            "mfa.authenticator": self.colleague.authenticator_set.first(),
        }.get(model)


@pytest.fixture
def worlds(db):
    return AdminWorld("Vienna Skin Clinic"), AdminWorld("Graz Skin Clinic")


@pytest.fixture
def superuser(db):
    return factories.UserFactory(
        email="root@portal.example", is_staff=True, is_superuser=True, clinic=None, role=""
    )


def _url(route: AdminRoute, world: AdminWorld) -> str:
    if route.model:
        if route.kind in ("changelist", "add"):
            return reverse(f"admin:{route.name}")
        record = world.object_for(route.model)
        return reverse(f"admin:{route.name}", args=[record.pk if record else MISSING])
    if route.kind == "app_list":
        return reverse("admin:app_list", kwargs={"app_label": "patients"})
    if route.kind == "view_on_site":
        from django.contrib.contenttypes.models import ContentType

        content_type = ContentType.objects.get_for_model(world.patient)
        return reverse("admin:view_on_site", args=[content_type.pk, world.patient.pk])
    if route.kind == "auth_user_password_change":
        return reverse("admin:auth_user_password_change", args=[world.colleague.pk])
    if route.kind == "diagnosis_modelversion_status":
        return reverse("admin:diagnosis_modelversion_status", args=[MISSING])
    return reverse(f"admin:{route.kind}")


def _requests(client, scope_worlds):
    """Every admin URL except log-out (which would end the session under test), once with the
    asker's clinic's objects and, for object URLs, once with the other clinic's."""
    own, other = scope_worlds
    for route in ROUTES:
        if route.kind == "logout":
            continue
        yield route, "own", client.get(_url(route, own))
        if route.model and route.kind not in ("changelist", "add"):
            yield route, "other", client.get(_url(route, other))


def _refused_at_the_door(response) -> bool:
    return response.status_code == 403 or (
        response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    )


def _not_found(response) -> bool:
    """The admin answers a missing (or out-of-scope) id by going back to the index with a
    message, the same for both."""
    return response.status_code == 302 and response["Location"] == reverse("admin:index")


@pytest.mark.parametrize("role", [STAFF, DOCTOR])
def test_staff_and_doctors_cannot_enter_the_admin(client, worlds, role):
    own, _ = worlds
    client.force_login(own.users[role])
    wrong = [
        f"{route.name} ({scope}): {response.status_code}"
        for route, scope, response in _requests(client, worlds)
        if route.kind not in ("login", "jsi18n") and not _refused_at_the_door(response)
    ]
    assert not wrong, f"{role} reached the admin: {wrong}"


def test_anonymous_visitors_are_sent_to_log_in(client, worlds):
    wrong = [
        f"{route.name}: {response.status_code}"
        for route, _, response in _requests(client, worlds)
        if route.kind != "jsi18n"
        and not (
            response.status_code == 302
            and response["Location"].startswith((reverse("admin:login"), reverse("account_login")))
        )
    ]
    assert not wrong, f"anonymous reached the admin: {wrong}"


def _expect_clinic_admin(route: AdminRoute, scope: str, response) -> str | None:
    """Why the response is wrong for a clinic admin, or None."""
    status = response.status_code
    if route.model is None:
        expected = {
            "index": {200},
            "login": {302},  # already signed in: on to the admin
            "password_change": {302},  # allauth's page
            "password_change_done": {200},
            "autocomplete": {403},  # no field named: refused
            "jsi18n": {200},
            "view_on_site": {404},  # no record has a public address
            "app_list": {200},
            "auth_user_password_change": {403},
            "diagnosis_modelversion_status": {403},
        }[route.kind]
        return None if status in expected else f"got {status}, expected {expected}"
    visible = route.model in CLINIC_ADMIN_VISIBLE
    if not visible:
        # Refused; for an id no record has, the admin may say "not found" first: nothing shown.
        return None if status == 403 or _not_found(response) else f"got {status}, expected 403"
    if route.kind in ("add", "delete"):
        if route.kind in ("change", "history", "delete") and scope == "other":
            # Another clinic's record: not found (or refused), never shown.
            return None if (_not_found(response) or status == 403) else f"got {status}"
        return None if status == 403 else f"got {status}, expected 403"
    if scope == "other":
        return None if _not_found(response) else f"another clinic's record answered {status}"
    if status != 200:
        return f"got {status}, expected 200"
    if route.kind == "change" and b'name="_save"' in response.content:
        return "offers a Save button"
    return None


@pytest.mark.parametrize("clinic_index", [0, 1], ids=["Vienna", "Graz"])
def test_clinic_admin_sees_own_clinic_read_only(client, worlds, sign_in_with_mfa, clinic_index):
    own = worlds[clinic_index]
    other = worlds[1 - clinic_index]
    sign_in_with_mfa(own.users[ADMIN])

    wrong = []
    for route, scope, response in _requests(client, (own, other)):
        reason = _expect_clinic_admin(route, scope, response)
        if reason:
            wrong.append(f"{route.name} ({scope}): {reason}")
        if response.status_code == 200 and route.model in CLINIC_ADMIN_VISIBLE:
            body = response.content.decode()
            for leak in (other.patient.mrn, other.clinic.name, other.users[ADMIN].email):
                if leak in body:
                    wrong.append(f"{route.name} ({scope}): shows {leak!r} of the other clinic")
    assert not wrong, "\n".join(wrong)


def test_clinic_admin_lists_show_only_their_clinic(client, worlds, sign_in_with_mfa):
    own, other = worlds
    sign_in_with_mfa(own.users[ADMIN])

    patients = client.get(reverse("admin:patients_patient_changelist"))
    events = client.get(reverse("admin:accounts_auditevent_changelist"))
    users = client.get(reverse("admin:accounts_user_changelist"))

    assert own.patient.mrn in patients.content.decode()
    assert list(patients.context["cl"].queryset) == [own.patient]
    assert {e.clinic_id for e in events.context["cl"].queryset} == {own.clinic.pk}
    assert {u.clinic_id for u in users.context["cl"].queryset} == {own.clinic.pk}
    # The list filters offer this clinic alone, and the patient filter its own patients.
    filters = events.content.decode()
    assert other.clinic.name not in filters and f"Patient {other.patient.pk}<" not in filters
    # Naming the other clinic in the URL's filters shows none of its patients.
    crafted = client.get(
        reverse("admin:patients_patient_changelist"), {"clinic__id__exact": other.clinic.pk}
    )
    assert other.patient.mrn not in crafted.content.decode()


def test_autocomplete_offers_only_the_clinic_s_patients(client, worlds, sign_in_with_mfa):
    own, other = worlds
    sign_in_with_mfa(own.users[ADMIN])
    query = {"app_label": "diagnosis", "model_name": "lesion", "field_name": "patient", "term": ""}

    response = client.get(f"{reverse('admin:autocomplete')}?{urlencode(query)}")

    assert response.status_code == 200
    ids = {int(result["id"]) for result in response.json()["results"]}
    assert ids == {own.patient.pk}


def test_clinic_admin_cannot_change_anything_by_posting(client, worlds, sign_in_with_mfa):
    own, _ = worlds
    sign_in_with_mfa(own.users[ADMIN])

    edit = client.post(
        reverse("admin:patients_patient_change", args=[own.patient.pk]),
        {"mrn": "CHANGED", "first_name": "X", "last_name": "Y", "date_of_birth": "1970-01-01"},
    )
    promote = client.post(
        reverse("admin:accounts_user_change", args=[own.colleague.pk]),
        {"email": own.colleague.email, "is_superuser": "on", "is_staff": "on"},
    )

    assert edit.status_code == 403 and promote.status_code == 403
    own.patient.refresh_from_db()
    own.colleague.refresh_from_db()
    assert own.patient.mrn != "CHANGED"
    assert not own.colleague.is_superuser


def test_viewing_a_patient_in_the_admin_is_audited(client, worlds, sign_in_with_mfa):
    own, _ = worlds
    admin_user = own.users[ADMIN]
    sign_in_with_mfa(admin_user)
    before = AuditEvent.objects.filter(action__startswith="admin.").count()

    client.get(reverse("admin:patients_patient_change", args=[own.patient.pk]))
    client.get(reverse("admin:diagnosis_review_changelist"))

    viewed = AuditEvent.objects.filter(action="admin.view").get()
    assert (viewed.user, viewed.patient_id, viewed.object_type) == (
        admin_user,
        own.patient.pk,
        "patient",
    )
    listed = AuditEvent.objects.filter(action="admin.list").get()
    assert listed.detail["model"] == "review" and listed.detail["count"] == 1
    assert AuditEvent.objects.filter(action__startswith="admin.").count() == before + 2


def test_superuser_sees_every_clinic_and_clinical_records_stay_read_only(
    client, worlds, superuser, sign_in_with_mfa
):
    own, other = worlds
    sign_in_with_mfa(superuser)

    wrong = []
    for route, scope, response in _requests(client, worlds):
        status = response.status_code
        if status >= 500:
            wrong.append(f"{route.name} ({scope}): {status}")
        elif route.model not in CLINIC_ADMIN_VISIBLE:
            continue  # other apps' admin pages: their own tests
        elif route.model in READ_ONLY_FOR_ALL and route.kind in ("add", "delete"):
            if status != 403:
                wrong.append(f"{route.name} ({scope}): {status}, expected 403 (read-only)")
        elif route.kind in ("changelist", "change", "history") and status != 200:
            wrong.append(f"{route.name} ({scope}): {status}, expected 200")
    assert not wrong, "\n".join(wrong)
    patients = client.get(reverse("admin:patients_patient_changelist"))
    assert set(patients.context["cl"].queryset) == {own.patient, other.patient}
    change = client.get(reverse("admin:diagnosis_review_change", args=[own.review.pk]))
    assert b'name="_save"' not in change.content
