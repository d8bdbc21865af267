"""Hospital sign-in with OpenID Connect (issue 18, item 1), against a real provider
(oidc-provider on localhost, tests/oidc): who is let in, into which clinic and with which role,
how two-factor authentication is judged, and what a person is told when something fails."""

from __future__ import annotations

import html

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.adapters import SSO_ONLY
from accounts.models import AuditEvent, ClinicSignOn, Role, User
from accounts.services.sign_on import (
    UNKNOWN_PERSON,
    client_secret_for,
    clinic_local_passwords_set,
    clinic_sign_on_save,
    secret_env_name,
)
from melanoma_portal.settings import base
from tests import factories
from tests.oidc.fixtures import (
    OidcProvider,
    callback_path,
    free_port,
    oidc_provider,  # noqa: F401 - the fixture
    sign_in_through_provider,
)

DASHBOARD = "/"


@pytest.fixture
def configure(clinic, clinic_admin, oidc_provider):  # noqa: F811
    """Register the portal at the provider for `clinic` and save its sign-on; keyword
    arguments change the clinic's choices (domains, JIT creation, MFA, claim mapping)."""
    client_id, secret = oidc_provider.register_client(
        f"http://testserver{callback_path(clinic.pk)}"
    )

    def save(**choices) -> ClinicSignOn:
        fields = {
            "display_name": "Vienna General Hospital",
            "issuer": oidc_provider.issuer,
            "client_id": client_id,
            "client_secret": secret,
            "allowed_email_domains": ["vienna.example"],
            "enabled": True,
        }
        return clinic_sign_on_save(actor=clinic_admin, clinic=clinic, **(fields | choices))

    save.registered_secret = secret
    return save


def text(response) -> str:
    """The page as a person reads it (entities decoded)."""
    return html.unescape(response.content.decode())


def signed_in_user(client) -> User | None:
    pk = client.session.get("_auth_user_id")
    return User.objects.get(pk=pk) if pk else None


def refusal(reason: str) -> AuditEvent:
    return AuditEvent.objects.get(action="sso.refused", detail__reason=reason)


# --- who is let in -------------------------------------------------------------------------------


def test_a_person_of_the_clinic_is_signed_in_by_verified_email_and_lands_on_the_dashboard(
    client, configure, staff
):
    configure()
    response = sign_in_through_provider(client, staff.clinic_id, "staff@vienna.example")

    assert response.status_code == 302 and response["Location"] == DASHBOARD
    assert signed_in_user(client) == staff
    assert client.get(DASHBOARD).status_code == 200
    login = AuditEvent.objects.get(action="login", user=staff)
    assert login.detail["sso"]["provider"] == f"clinic-{staff.clinic_id}"
    assert ClinicSignOn.objects.get(clinic=staff.clinic).first_sign_in_at is not None


def test_an_unknown_person_is_refused_with_a_clear_message(client, configure, clinic):
    configure()
    response = sign_in_through_provider(client, clinic.pk, "newcomer@vienna.example")

    assert response.status_code == 403
    assert UNKNOWN_PERSON in text(response)
    assert signed_in_user(client) is None
    assert not User.objects.filter(email="newcomer@vienna.example").exists()
    assert refusal("unknown").user_email == "newcomer@vienna.example"


def test_just_in_time_creation_makes_clinic_staff_when_the_clinic_allows_it(
    client, configure, clinic
):
    configure(create_unknown_as_staff=True)
    response = sign_in_through_provider(client, clinic.pk, "newcomer@vienna.example")

    assert response.status_code == 302
    user = User.objects.get(email="newcomer@vienna.example")
    # Staff, although the provider says "derm-doctors": no claim is mapped.
    assert (user.clinic, user.role, user.full_name) == (clinic, Role.STAFF, "Jana Novak")
    assert not user.has_usable_password()
    assert signed_in_user(client) == user
    created = AuditEvent.objects.get(action="user.create", object_id=str(user.pk))
    assert created.detail["by"] == f"sso:clinic-{clinic.pk}"


def test_the_provider_claims_set_no_role_unless_the_clinic_maps_one(client, configure, clinic):
    portal_account = factories.UserFactory(clinic=clinic, email="doctor@vienna.example")
    configure()
    sign_in_through_provider(client, clinic.pk, "doctor@vienna.example")
    portal_account.refresh_from_db()
    assert portal_account.role == Role.STAFF


def test_a_mapped_claim_sets_the_role_and_the_change_is_audited(client, configure, clinic):
    portal_account = factories.UserFactory(clinic=clinic, email="doctor@vienna.example")
    configure(role_claim="groups", role_claim_values={"derm-doctors": "doctor"})

    sign_in_through_provider(client, clinic.pk, "doctor@vienna.example")

    portal_account.refresh_from_db()
    assert portal_account.role == Role.DOCTOR
    change = AuditEvent.objects.get(action="user.role_change", object_id=str(portal_account.pk))
    assert change.detail["changes"]["role"] == ["staff", "doctor"]
    assert change.detail["claim"] == "groups"


def test_with_a_mapped_claim_someone_in_no_mapped_group_is_refused(
    client, configure, clinic, clinic_admin
):
    configure(role_claim="groups", role_claim_values={"derm-doctors": "doctor"})
    response = sign_in_through_provider(client, clinic.pk, "admin@vienna.example")
    assert response.status_code == 403
    assert "none of the groups" in text(response)
    assert signed_in_user(client) is None


def test_a_provider_of_one_clinic_can_never_sign_anyone_into_another(
    client, configure, clinic, other_staff
):
    # Clinic A's provider vouches for an address of clinic B's account, and clinic A even
    # allows its domain and creates unknown people: still nobody gets in, and no account is made.
    configure(
        allowed_email_domains=["vienna.example", "graz.example"], create_unknown_as_staff=True
    )

    response = sign_in_through_provider(client, clinic.pk, "staff@graz.example")

    assert response.status_code == 403
    assert UNKNOWN_PERSON in text(response)  # the same words as for a stranger
    assert signed_in_user(client) is None
    assert list(User.objects.filter(email__iexact="staff@graz.example")) == [other_staff]
    assert refusal("unknown").clinic_id is None  # nobody signed in


def test_an_unverified_address_is_refused(client, configure, clinic):
    factories.UserFactory(clinic=clinic, email="unverified@vienna.example")
    configure()
    response = sign_in_through_provider(client, clinic.pk, "unverified@vienna.example")
    assert response.status_code == 403
    assert "does not vouch for your e-mail address" in text(response)
    assert signed_in_user(client) is None


def test_an_address_outside_the_allowed_domains_is_refused(client, configure, clinic):
    factories.UserFactory(clinic=clinic, email="someone@mail.example")
    configure()
    response = sign_in_through_provider(client, clinic.pk, "someone@mail.example")
    assert response.status_code == 403
    assert "Addresses at mail.example may not sign in" in text(response)
    assert refusal("domain")


def test_a_deactivated_account_is_refused(client, configure, staff):
    staff.is_active = False
    staff.save()
    configure()
    response = sign_in_through_provider(client, staff.clinic_id, "staff@vienna.example")
    assert response.status_code == 403
    assert "deactivated" in text(response)
    assert signed_in_user(client) is None


def test_a_locked_out_account_cannot_sign_in_through_the_provider_either(
    client, settings, configure, staff
):
    settings.ACCOUNT_RATE_LIMITS = base.ACCOUNT_RATE_LIMITS
    configure()
    for _ in range(5):
        client.post(reverse("account_login"), {"login": staff.email, "password": "guess"})

    response = sign_in_through_provider(client, staff.clinic_id, "staff@vienna.example")

    assert response.status_code == 403
    assert "Too many failed sign-ins for this account" in text(response)
    assert signed_in_user(client) is None


# --- two-factor authentication -------------------------------------------------------------------


@pytest.fixture
def mfa_roles(settings):
    settings.MFA_REQUIRED_ROLES = ["admin", "doctor"]


def test_a_provider_that_enforces_mfa_and_says_so_in_amr_needs_no_portal_code(
    client, mfa_roles, configure, doctor
):
    configure(provider_enforces_mfa=True)
    response = sign_in_through_provider(client, doctor.clinic_id, "doctor@vienna.example")
    assert response.status_code == 302 and response["Location"] == DASHBOARD
    assert client.get(DASHBOARD).status_code == 200
    login = AuditEvent.objects.get(action="login", user=doctor)
    assert login.detail["sso"]["amr"] == ["pwd", "otp"]
    assert login.detail["sso"]["mfa_by_provider"] is True


def test_an_amr_without_a_second_factor_leaves_the_portals_own_mfa_in_force(
    client, mfa_roles, configure, clinic
):
    # The provider says "password only" although the clinic declared it enforces MFA.
    doctor = factories.DoctorFactory(clinic=clinic, email="staff@vienna.example")
    configure(provider_enforces_mfa=True)
    sign_in_through_provider(client, clinic.pk, "staff@vienna.example")

    assert signed_in_user(client) == doctor
    dashboard = client.get(DASHBOARD)
    assert dashboard.status_code == 302
    assert dashboard["Location"] == reverse("mfa_activate_totp")


def test_without_the_clinics_declaration_the_providers_amr_is_not_trusted(
    client, mfa_roles, configure, doctor
):
    configure(provider_enforces_mfa=False)
    sign_in_through_provider(client, doctor.clinic_id, "doctor@vienna.example")
    assert client.get(DASHBOARD)["Location"] == reverse("mfa_activate_totp")


def test_a_declared_provider_that_reports_no_amr_is_trusted(
    client, mfa_roles, configure, clinic_admin
):
    configure(provider_enforces_mfa=True)
    sign_in_through_provider(client, clinic_admin.clinic_id, "admin@vienna.example")
    assert client.get(DASHBOARD).status_code == 200


def test_an_account_with_an_authenticator_is_asked_for_its_code_after_the_provider(
    client, configure, doctor
):
    secret = factories.activate_totp(doctor)
    configure(provider_enforces_mfa=False)

    response = sign_in_through_provider(client, doctor.clinic_id, "doctor@vienna.example")

    assert response["Location"] == reverse("mfa_authenticate")
    assert signed_in_user(client) is None
    client.post(reverse("mfa_authenticate"), {"code": factories.totp_code(secret)})
    assert signed_in_user(client) == doctor


# --- local passwords -----------------------------------------------------------------------------


def test_local_passwords_go_off_only_after_a_sign_in_through_the_provider_worked(
    client, configure, clinic, clinic_admin, staff
):
    configure()
    with pytest.raises(ValidationError, match="once someone of the clinic has signed in"):
        clinic_local_passwords_set(actor=clinic_admin, clinic=clinic, allowed=False)

    sign_in_through_provider(client, clinic.pk, "staff@vienna.example")
    client.logout()
    clinic_local_passwords_set(actor=clinic_admin, clinic=clinic, allowed=False)

    refused = client.post(
        reverse("account_login"), {"login": staff.email, "password": factories.PASSWORD}
    )
    assert signed_in_user(client) is None
    assert SSO_ONLY in text(refused)
    assert AuditEvent.objects.filter(action="login.refused", user=staff).exists()
    api = APIClient().post(
        "/api/v1/auth/token/",
        {"email": staff.email, "password": factories.PASSWORD},
        format="json",
    )
    assert api.status_code == 403 and api.json()["code"] == "sso_only"
    # The hospital sign-in still works.
    assert sign_in_through_provider(client, clinic.pk, "staff@vienna.example").status_code == 302


# --- provider errors, in plain words -------------------------------------------------------------


def test_a_wrong_client_secret_is_named_as_such(client, configure, staff):
    configure(client_secret="not-the-secret")
    response = sign_in_through_provider(client, staff.clinic_id, "staff@vienna.example")
    assert response.status_code == 401
    assert "refused the portal's client credentials" in text(response)
    assert AuditEvent.objects.get(action="sso.error").detail["kind"] == "wrong_client_secret"
    assert signed_in_user(client) is None


def test_an_unreachable_provider_is_named_as_such(client, clinic, clinic_admin):
    # A port nothing listens on.
    issuer = f"http://127.0.0.1:{free_port()}"
    clinic_sign_on_save(
        actor=clinic_admin,
        clinic=clinic,
        display_name="Vienna General Hospital",
        issuer=issuer,
        client_id="portal",
        client_secret="x",
        allowed_email_domains=["vienna.example"],
        enabled=True,
    )
    response = client.post(f"/accounts/oidc/clinic-{clinic.pk}/login/")
    assert response.status_code == 502
    assert "could not reach your hospital's identity provider" in text(response)
    assert AuditEvent.objects.get(action="sso.error").detail["kind"] == "unreachable"


@pytest.mark.parametrize(
    ("offset_s", "words"),
    [(600, "minutes ahead of the portal's"), (-900, "its clock and the portal's differ")],
)
def test_a_provider_with_a_wrong_clock_is_refused_saying_so(
    client, tmp_path, clinic, clinic_admin, staff, offset_s, words
):
    provider = OidcProvider(tmp_path, clock_offset_s=offset_s).start()
    try:
        client_id, secret = provider.register_client(f"http://testserver{callback_path(clinic.pk)}")
        clinic_sign_on_save(
            actor=clinic_admin,
            clinic=clinic,
            display_name="Vienna General Hospital",
            issuer=provider.issuer,
            client_id=client_id,
            client_secret=secret,
            allowed_email_domains=["vienna.example"],
            enabled=True,
        )
        response = sign_in_through_provider(client, clinic.pk, "staff@vienna.example")
    finally:
        provider.stop()
    assert response.status_code in (401, 403)
    assert words in text(response)
    assert signed_in_user(client) is None


# --- configuration -------------------------------------------------------------------------------


def test_the_client_secret_is_stored_encrypted_and_the_environment_wins(
    client, monkeypatch, configure, clinic, staff
):
    sign_on = configure(client_secret="stored-but-wrong")
    assert "stored-but-wrong" not in sign_on.client_secret_encrypted
    assert client_secret_for(sign_on) == "stored-but-wrong"

    monkeypatch.setenv(secret_env_name(clinic.pk), configure.registered_secret)

    response = sign_in_through_provider(client, clinic.pk, "staff@vienna.example")
    assert response.status_code == 302
    assert signed_in_user(client) == staff


def test_only_the_clinics_admin_or_a_superuser_configures_its_sign_in(clinic, other_clinic, doctor):
    other_admin = factories.ClinicAdminFactory(clinic=other_clinic)
    fields = {
        "display_name": "X",
        "issuer": "https://login.hospital.example",
        "client_id": "portal",
        "allowed_email_domains": ["vienna.example"],
    }
    for outsider in (other_admin, doctor):
        with pytest.raises(PermissionDenied):
            clinic_sign_on_save(actor=outsider, clinic=clinic, **fields)
    superuser = User.objects.create_superuser("root@portal.example", "x-long-password-1")
    assert clinic_sign_on_save(actor=superuser, clinic=clinic, **fields).clinic == clinic


def test_only_the_hospital_sign_in_page_lets_its_form_reach_the_provider(
    client,
    configure,
    clinic,
    oidc_provider,  # noqa: F811
):
    configure()
    start = client.get(f"/accounts/oidc/clinic-{clinic.pk}/login/")
    login_page = client.get(reverse("account_login"))
    assert f"form-action 'self' {oidc_provider.issuer};" in start["Content-Security-Policy"]
    assert oidc_provider.issuer not in login_page["Content-Security-Policy"]
