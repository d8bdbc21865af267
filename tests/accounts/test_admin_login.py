"""The Django admin is entered through allauth's log-in (lock-out, two-factor authentication),
and only with an authenticator code used in this session (accounts.sign_in, accounts.mfa)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.core.cache import cache
from django.urls import reverse

from melanoma_portal.settings import base
from tests import factories

WRONG = "wrong-password-123"


@pytest.fixture
def superuser(db):
    return factories.UserFactory(
        email="root@portal.example", is_staff=True, is_superuser=True, clinic=None, role=""
    )


def is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_admin_login_form_never_checks_a_password(client, superuser):
    # Issue 11: POST /admin/login/ logged a superuser in with the password alone.
    response = client.post(
        reverse("admin:login"), {"username": superuser.email, "password": factories.PASSWORD}
    )

    assert not is_logged_in(client)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next={quote('/admin/', safe='')}"


def test_admin_login_sends_anonymous_visitors_to_allauth_with_where_they_were_going(client, db):
    response = client.get(reverse("admin:accounts_user_changelist"), follow=True)

    first_hop, second_hop = response.redirect_chain[:2]
    assert first_hop[0].startswith(reverse("admin:login"))
    wanted = quote(reverse("admin:accounts_user_changelist"), safe="")
    assert second_hop[0] == f"{reverse('account_login')}?next={wanted}"


def test_admin_login_refuses_a_next_on_another_site(client, db):
    response = client.get(reverse("admin:login"), {"next": "https://evil.example/"})
    assert response["Location"] == f"{reverse('account_login')}?next={quote('/admin/', safe='')}"


def test_wrong_passwords_at_the_admin_door_count_towards_the_lock_out(client, superuser, settings):
    # Issue 11: eight wrong passwords on /admin/login/ were all answered 200 and the ninth
    # logged in, even from an address /accounts/login/ had locked.
    settings.ACCOUNT_RATE_LIMITS = base.ACCOUNT_RATE_LIMITS
    cache.clear()
    factories.activate_totp(superuser)
    for _ in range(8):
        client.post(reverse("admin:login"), {"username": superuser.email, "password": WRONG})
        client.post(reverse("account_login"), {"login": superuser.email, "password": WRONG})

    client.post(
        reverse("admin:login"), {"username": superuser.email, "password": factories.PASSWORD}
    )
    client.post(
        reverse("account_login"), {"login": superuser.email, "password": factories.PASSWORD}
    )

    assert not is_logged_in(client)
    assert client.get(reverse("admin:index")).status_code == 302
    cache.clear()


def test_superuser_signs_in_with_password_and_code_and_lands_in_the_admin(
    client, superuser, sign_in_with_mfa
):
    response = sign_in_with_mfa(superuser, next_url=reverse("admin:index"))

    assert response["Location"] == reverse("admin:index")
    assert client.get(reverse("admin:index")).status_code == 200


def test_superuser_with_an_authenticator_signed_in_without_it_must_enter_a_code(client, superuser):
    secret = factories.activate_totp(superuser)
    client.force_login(superuser)  # a session without a code (e.g. from before enrolment)

    response = client.get(reverse("admin:accounts_user_changelist"))

    wanted = quote(reverse("admin:accounts_user_changelist"), safe="")
    assert response["Location"] == f"{reverse('mfa_reauthenticate')}?next={wanted}"
    entered = client.post(
        f"{reverse('mfa_reauthenticate')}?next={wanted}", {"code": factories.totp_code(secret)}
    )
    assert entered["Location"] == reverse("admin:accounts_user_changelist")
    assert client.get(reverse("admin:accounts_user_changelist")).status_code == 200


@pytest.mark.parametrize("who", ["superuser", "clinic_admin_with_admin_access"])
def test_admin_user_without_an_authenticator_is_sent_to_set_one_up(client, superuser, clinic, who):
    user = (
        superuser
        if who == "superuser"
        else factories.ClinicAdminFactory(clinic=clinic, is_staff=True, email="boss@vienna.example")
    )
    client.force_login(user)

    response = client.get(reverse("admin:index"), follow=True)

    assert response.redirect_chain[0][0] == reverse("mfa_activate_totp")
    shown = [str(message) for message in response.context["messages"]]
    assert any("site administration needs two-factor authentication" in m for m in shown)


def test_mfa_required_even_where_mfa_required_roles_is_empty(client, superuser, settings):
    settings.MFA_REQUIRED_ROLES = []
    client.force_login(superuser)
    assert client.get(reverse("admin:index"))["Location"] == reverse("mfa_activate_totp")


def test_signed_in_user_without_admin_access_is_refused_plainly(client, staff):
    client.force_login(staff)

    response = client.get(reverse("admin:index"), follow=True)

    assert response.status_code == 403
    assert "Your account cannot use the site administration." in response.content.decode()
