"""The clinic admin's page for the hospital sign-in (issue 18): what it shows the hospital's IT
department, what it stores (the secret encrypted, never shown again), and who may change it."""

from __future__ import annotations

from django.urls import reverse

from accounts.models import AuditEvent, ClinicSignOn
from accounts.services.sign_on import client_secret_for
from tests import factories

URL = "/clinic/sign-on/"
FORM = {
    "display_name": "Vienna General Hospital",
    "issuer": "https://login.hospital.example/realms/staff",
    "client_id": "melanoma-portal",
    "client_secret": "the-hospitals-secret",
    "allowed_email_domains": "vienna.example, @Hospital.Example",
    "enabled": "on",
    "role_claim": "",
    "role_claim_values": "",
}


def test_the_page_names_the_redirect_uri_to_register(client, clinic_admin):
    client.force_login(clinic_admin)
    page = client.get(URL).content.decode()
    assert (
        f"http://testserver/accounts/oidc/clinic-{clinic_admin.clinic_id}/login/callback/" in page
    )


def test_a_clinic_admin_saves_the_provider_with_the_secret_encrypted(client, clinic_admin):
    client.force_login(clinic_admin)

    response = client.post(URL, FORM)

    assert response.status_code == 302
    sign_on = ClinicSignOn.objects.get(clinic=clinic_admin.clinic)
    assert sign_on.allowed_email_domains == ["hospital.example", "vienna.example"]
    assert not sign_on.create_unknown_as_staff and not sign_on.role_claim  # off by default
    assert "the-hospitals-secret" not in sign_on.client_secret_encrypted
    assert client_secret_for(sign_on) == "the-hospitals-secret"
    assert "the-hospitals-secret" not in client.get(URL).content.decode()
    event = AuditEvent.objects.get(action="sign_on.configure")
    assert event.detail["secret_changed"] is True
    assert "the-hospitals-secret" not in str(event.detail)


def test_an_empty_secret_keeps_the_stored_one(client, clinic_admin):
    client.force_login(clinic_admin)
    client.post(URL, FORM)
    client.post(URL, {**FORM, "client_secret": "", "display_name": "Renamed"})
    sign_on = ClinicSignOn.objects.get(clinic=clinic_admin.clinic)
    assert sign_on.display_name == "Renamed"
    assert client_secret_for(sign_on) == "the-hospitals-secret"


def test_a_role_mapping_must_name_portal_roles(client, clinic_admin):
    client.force_login(clinic_admin)
    response = client.post(
        URL, {**FORM, "role_claim": "groups", "role_claim_values": "derm = surgeon"}
    )
    assert response.status_code == 400
    assert not ClinicSignOn.objects.exists()


def test_local_passwords_cannot_go_off_before_the_hospital_sign_in_worked(client, clinic_admin):
    client.force_login(clinic_admin)
    client.post(URL, FORM)
    response = client.post(URL, {"local_passwords": "off"}, follow=True)
    assert "once someone of the clinic has signed in" in response.content.decode()
    assert not ClinicSignOn.objects.get(clinic=clinic_admin.clinic).local_passwords_disabled


def test_other_roles_may_not_open_it(client, doctor):
    client.force_login(doctor)
    assert client.get(URL).status_code == 403
    assert client.post(URL, FORM).status_code == 403
    assert not ClinicSignOn.objects.exists()


def test_the_login_page_offers_each_enabled_hospital_sign_in(client, clinic_admin, other_clinic):
    client.force_login(clinic_admin)
    client.post(URL, FORM)
    client.logout()
    other_admin = factories.ClinicAdminFactory(clinic=other_clinic)
    client.force_login(other_admin)
    client.post(URL, {**FORM, "display_name": "Graz Hospital", "enabled": ""})  # off
    client.logout()

    page = client.get(reverse("account_login")).content.decode()

    assert "Vienna General Hospital" in page
    assert f"/accounts/oidc/clinic-{clinic_admin.clinic_id}/login/" in page
    assert "Graz Hospital" not in page


def test_a_superuser_sets_any_clinics_sign_in_in_the_django_admin(client, sign_in_with_mfa, clinic):
    from accounts.models import User

    root = User.objects.create_superuser("root@portal.example", factories.PASSWORD)
    sign_in_with_mfa(root)

    response = client.post(
        reverse("admin:accounts_clinicsignon_add"),
        {
            "clinic": clinic.pk,
            "enabled": "on",
            "display_name": "Vienna General Hospital",
            "issuer": "https://login.hospital.example",
            "client_id": "portal",
            "client_secret": "typed-by-root",
            "allowed_email_domains": '["vienna.example"]',
            "role_claim": "",
            "role_claim_values": "{}",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    sign_on = ClinicSignOn.objects.get(clinic=clinic)
    assert client_secret_for(sign_on) == "typed-by-root"
    assert AuditEvent.objects.get(action="sign_on.configure").user_id == root.pk
