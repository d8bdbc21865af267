"""One e-mail address per account, changed only by a clinic admin: nobody attaches another
clinic's address to their account, signs in by it or gets its password-reset link (issue 11)."""

from __future__ import annotations

import importlib
import re

import pytest
from allauth.account.models import EmailAddress
from django.apps import apps
from django.core import mail
from django.urls import reverse

from accounts.models import AuditEvent, User
from accounts.services import user_change_email
from tests import factories

UNAVAILABLE = "You cannot use this address; choose another."


@pytest.fixture
def bravo_doctor(other_clinic):
    return factories.DoctorFactory(clinic=other_clinic, email="doctor@bravo.example")


def is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def attach(user, email: str, *, verified: bool = False) -> None:
    """An address attached the way self-service e-mail management did (data from before)."""
    EmailAddress.objects.create(user=user, email=email, verified=verified, primary=False)


def test_self_service_email_page_refuses_to_attach_an_address(client, staff, bravo_doctor):
    client.force_login(staff)

    response = client.post(
        reverse("account_email"), {"action_add": "", "email": bravo_doctor.email}
    )

    assert response.status_code == 403
    assert not EmailAddress.objects.filter(user=staff, email=bravo_doctor.email).exists()
    page = client.get(reverse("account_email")).content.decode()
    assert "managed by your clinic&#x27;s administrator" in page


def test_an_address_attached_to_another_account_does_not_sign_in(client, staff, bravo_doctor):
    # Issue 11: staff A attached doctor@bravo and signed in by it with staff A's password.
    staff.set_password("staff-alpha-own-passphrase")
    staff.save()
    attach(staff, bravo_doctor.email)

    client.post(
        reverse("account_login"),
        {"login": bravo_doctor.email, "password": "staff-alpha-own-passphrase"},
    )

    assert not is_logged_in(client)


def test_an_attached_address_can_never_be_verified_while_its_owner_has_it(staff, bravo_doctor):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        attach(staff, bravo_doctor.email, verified=True)


def test_password_reset_for_an_address_mails_only_its_own_account(client, staff, bravo_doctor):
    attach(staff, bravo_doctor.email)

    client.post(reverse("account_reset_password"), {"email": bravo_doctor.email})

    links = re.findall(
        r"/accounts/password/reset/key/([0-9a-z]+)-", "".join(m.body for m in mail.outbox)
    )
    assert links, "no reset link was mailed"
    assert {int(uid, 36) for uid in links} == {bravo_doctor.pk}
    assert all(m.to == [bravo_doctor.email] for m in mail.outbox)


def test_every_account_has_exactly_its_own_address_verified(clinic_admin, staff):
    rows = list(EmailAddress.objects.filter(user=staff).values_list("email", "verified", "primary"))
    assert rows == [(staff.email, True, True)]


# --- a clinic admin changes an address --------------------------------------------------------


def test_clinic_admin_changes_an_address_and_it_is_audited(client, clinic_admin, staff):
    old = staff.email
    client.force_login(clinic_admin)

    response = client.post(
        reverse("accounts:user_email", args=[staff.pk]), {"email": "Nurse.New@Vienna.example"}
    )

    assert response.status_code == 302
    staff.refresh_from_db()
    assert staff.email == "nurse.new@vienna.example"
    rows = list(EmailAddress.objects.filter(user=staff).values_list("email", "verified", "primary"))
    assert rows == [("nurse.new@vienna.example", True, True)]
    event = AuditEvent.objects.get(action="user.email_change")
    assert event.user == clinic_admin and event.object_id == str(staff.pk)
    assert event.detail == {"old": old, "new": "nurse.new@vienna.example"}
    assert [m.to for m in mail.outbox] == [[old]]  # the old address is told
    client.logout()
    client.post(reverse("account_login"), {"login": old, "password": factories.PASSWORD})
    assert not is_logged_in(client)
    client.post(reverse("account_login"), {"login": staff.email, "password": factories.PASSWORD})
    assert is_logged_in(client)


def test_clinic_admin_cannot_change_another_clinics_address(client, clinic_admin, bravo_doctor):
    client.force_login(clinic_admin)

    response = client.post(
        reverse("accounts:user_email", args=[bravo_doctor.pk]), {"email": "x@vienna.example"}
    )

    assert response.status_code == 404
    bravo_doctor.refresh_from_db()
    assert bravo_doctor.email == "doctor@bravo.example"


def test_changing_to_an_address_in_use_says_only_that_it_cannot_be_used(
    client, clinic_admin, staff, bravo_doctor
):
    client.force_login(clinic_admin)

    page = client.post(
        reverse("accounts:user_email", args=[staff.pk]), {"email": bravo_doctor.email.upper()}
    ).content.decode()

    assert UNAVAILABLE in page
    assert bravo_doctor.clinic.name not in page
    staff.refresh_from_db()
    assert staff.email == "staff@vienna.example"


@pytest.mark.parametrize("whose", ["another clinic's", "this clinic's", "attached elsewhere"])
def test_new_account_with_an_address_in_use_gets_the_same_message_for_any_reason(
    client, clinic_admin, staff, bravo_doctor, whose
):
    # Issue 11: "An account with this email address already exists" told one clinic's admin
    # who works at another.
    email = {
        "another clinic's": bravo_doctor.email,
        "this clinic's": staff.email,
        "attached elsewhere": "old.address@bravo.example",
    }[whose]
    attach(bravo_doctor, "old.address@bravo.example")
    client.force_login(clinic_admin)

    page = client.post(
        reverse("accounts:user_create"), {"email": email, "full_name": "New", "role": "staff"}
    ).content.decode()

    assert UNAVAILABLE in page
    assert "already exists" not in page
    assert User.objects.filter(email__iexact=email).count() <= 1
    assert mail.outbox == []


def test_two_accounts_cannot_differ_in_the_case_of_their_address_alone(clinic, staff):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        factories.UserFactory(clinic=clinic, email=staff.email.upper())


def test_superuser_changes_an_address_in_the_django_admin_through_the_service(
    client, staff, sign_in_with_mfa
):
    superuser = factories.UserFactory(is_staff=True, is_superuser=True, clinic=None, role="")
    sign_in_with_mfa(superuser)
    url = reverse("admin:accounts_user_change", args=[staff.pk])
    form = client.get(url).context["adminform"].form
    data = {key: value for key, value in form.initial.items() if value is not None}
    data.update(
        email="moved@vienna.example", clinic=staff.clinic_id, groups=[], user_permissions=[]
    )
    data.update(
        last_login_0="", last_login_1="", date_joined_0="2025-01-01", date_joined_1="10:00:00"
    )

    response = client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    staff.refresh_from_db()
    assert staff.email == "moved@vienna.example"
    event = AuditEvent.objects.get(action="user.email_change")
    assert event.user == superuser and event.detail["old"] == "staff@vienna.example"


def test_staff_cannot_change_an_address(staff, doctor):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        user_change_email(actor=staff, user=doctor, email="elsewhere@vienna.example")


# --- the migration that removed attached addresses --------------------------------------------


def test_migration_removes_attached_addresses_and_records_each(staff, bravo_doctor):
    attach(staff, bravo_doctor.email)
    EmailAddress.objects.filter(user=bravo_doctor).delete()  # an account with no row yet
    migration = importlib.import_module("accounts.migrations.0004_one_email_address_per_account")

    migration.one_address_per_account(apps, None)

    assert list(EmailAddress.objects.filter(user=staff).values_list("email", flat=True)) == [
        staff.email
    ]
    assert EmailAddress.objects.get(user=bravo_doctor).verified
    removed = AuditEvent.objects.get(action="email.remove")
    assert removed.object_id == str(staff.pk) and removed.detail["email"] == bravo_doctor.email
