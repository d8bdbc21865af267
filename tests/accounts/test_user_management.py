"""A clinic admin creates their clinic's accounts, changes roles and deactivates people."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from accounts import services
from accounts.models import AuditEvent, Role, User
from tests import factories


@pytest.fixture
def admin_client(client, clinic_admin):
    client.force_login(clinic_admin)
    return client


def test_new_user_joins_admins_clinic_and_gets_a_set_password_email(admin_client, clinic):
    response = admin_client.post(
        reverse("accounts:user_create"),
        {"email": "New.Nurse@Vienna.example", "full_name": "New Nurse", "role": "staff"},
    )

    user = User.objects.get(email="new.nurse@vienna.example")
    assert response.status_code == 302
    assert user.clinic == clinic and user.role == Role.STAFF
    assert not user.has_usable_password()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new.nurse@vienna.example"]
    assert "/accounts/password/reset/key/" in mail.outbox[0].body
    assert AuditEvent.objects.filter(action="user.create", object_id=str(user.pk)).exists()


def test_emailed_link_sets_a_password_that_logs_in(admin_client, client):
    admin_client.post(
        reverse("accounts:user_create"),
        {"email": "doc@vienna.example", "full_name": "Dr Doc", "role": "doctor"},
    )
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+)", mail.outbox[0].body)
    admin_client.logout()

    # allauth moves the key into the session and redirects to a key-less form.
    form_url = admin_client.get(link.group(1))["Location"]
    new_password = "a-long-Unusual-passphrase-42"
    admin_client.post(form_url, {"password1": new_password, "password2": new_password})

    response = admin_client.post(
        reverse("account_login"), {"login": "doc@vienna.example", "password": new_password}
    )
    assert response.status_code == 302
    assert admin_client.get(reverse("diagnosis:dashboard")).status_code == 200


def test_existing_email_is_refused_with_a_message(admin_client, staff):
    response = admin_client.post(
        reverse("accounts:user_create"),
        {"email": staff.email.upper(), "full_name": "Twin", "role": "staff"},
    )
    assert "You cannot use this address; choose another." in response.content.decode()
    assert User.objects.filter(email__iexact=staff.email).count() == 1
    assert mail.outbox == []


def test_role_change_is_saved_and_audited(admin_client, clinic_admin, staff):
    admin_client.post(
        reverse("accounts:user_edit", args=[staff.pk]), {"full_name": "Promoted", "role": "doctor"}
    )
    staff.refresh_from_db()
    assert staff.role == Role.DOCTOR and staff.full_name == "Promoted"
    event = AuditEvent.objects.get(action="user.role_change", object_id=str(staff.pk))
    assert event.user == clinic_admin
    assert event.detail["changes"]["role"] == ["staff", "doctor"]


def test_deactivated_user_can_no_longer_log_in(admin_client, client, staff):
    admin_client.post(reverse("accounts:user_deactivate", args=[staff.pk]))
    admin_client.logout()

    response = client.post(
        reverse("account_login"), {"login": staff.email, "password": factories.PASSWORD}
    )

    staff.refresh_from_db()
    assert not staff.is_active
    assert response.status_code != 302 or "inactive" in response["Location"]
    assert client.get(reverse("diagnosis:dashboard")).status_code == 302


def test_reactivated_user_can_log_in_again(admin_client, client, staff):
    admin_client.post(reverse("accounts:user_deactivate", args=[staff.pk]))
    admin_client.post(reverse("accounts:user_reactivate", args=[staff.pk]))
    admin_client.logout()
    client.post(reverse("account_login"), {"login": staff.email, "password": factories.PASSWORD})
    assert client.get(reverse("diagnosis:dashboard")).status_code == 200


def test_admin_cannot_deactivate_or_demote_themselves(clinic_admin):
    with pytest.raises(PermissionDenied):
        services.user_deactivate(actor=clinic_admin, user=clinic_admin)
    with pytest.raises(PermissionDenied):
        services.user_set_role(actor=clinic_admin, user=clinic_admin, role=Role.STAFF)


def test_admin_cannot_manage_another_clinics_user(clinic_admin, other_staff):
    with pytest.raises(PermissionDenied):
        services.user_deactivate(actor=clinic_admin, user=other_staff)
    other_staff.refresh_from_db()
    assert other_staff.is_active


def test_doctor_cannot_create_users(doctor):
    with pytest.raises(PermissionDenied):
        services.user_create(actor=doctor, email="x@y.example", full_name="X", role="admin")
    assert not User.objects.filter(email="x@y.example").exists()


def test_user_list_shows_only_own_clinic(admin_client, staff, other_staff):
    html = admin_client.get(reverse("accounts:user_list")).content.decode()
    assert staff.email in html and other_staff.email not in html


def test_open_sign_up_is_closed(client, db):
    response = client.post(
        reverse("account_signup"),
        {"email": "me@x.example", "password1": "xX-long-pass-99", "password2": "xX-long-pass-99"},
    )
    assert not User.objects.filter(email="me@x.example").exists()
    assert response.status_code != 500
