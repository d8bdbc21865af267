"""The idle log-out's clock on the server (issue 13, item 7): polling pages do not keep a
session alive, the page can ask how long is left without extending it, and "Stay signed in"
starts the clock again."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django.urls import reverse

from accounts.middleware import SESSION_LAST_SEEN

BACKGROUND = {"HTTP_X_PORTAL_BACKGROUND": "1"}


def _idle_for(client, seconds: float) -> None:
    session = client.session
    session[SESSION_LAST_SEEN] = time.time() - seconds
    session.save()


@pytest.fixture
def signed_in(client, staff, settings):
    settings.SESSION_IDLE_TIMEOUT_S = 30 * 60
    settings.SESSION_IDLE_WARNING_S = 60
    client.force_login(staff)
    client.get(reverse("patients:list"))
    return client


def test_polling_does_not_keep_an_idle_session_alive(signed_in, lesion):
    _idle_for(signed_in, 10 * 60)
    before = signed_in.session[SESSION_LAST_SEEN]

    signed_in.get(reverse("diagnosis:dashboard_live"), **BACKGROUND)
    assert signed_in.session[SESSION_LAST_SEEN] == before

    signed_in.get(reverse("diagnosis:dashboard"))
    assert signed_in.session[SESSION_LAST_SEEN] > before + 9 * 60


def test_the_clock_says_how_long_is_left_without_extending_it(signed_in):
    _idle_for(signed_in, 10 * 60)

    answer = signed_in.get(reverse("session_clock"), **BACKGROUND).json()

    assert answer["signed_in"] is True and answer["warn_before_s"] == 60
    assert 19 * 60 < answer["idle_left_s"] <= 20 * 60
    again = signed_in.get(reverse("session_clock"), **BACKGROUND).json()
    assert again["idle_left_s"] <= answer["idle_left_s"]


def test_stay_signed_in_starts_the_clock_again(staff, settings):
    settings.SESSION_IDLE_TIMEOUT_S = 30 * 60
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    page = client.get(reverse("patients:list"))
    token = page.context["csrf_token"]
    _idle_for(client, 29 * 60)

    refused = client.post(reverse("session_clock"), **BACKGROUND)
    stayed = client.post(reverse("session_clock"), HTTP_X_CSRFTOKEN=str(token), **BACKGROUND)

    assert refused.status_code == 403  # a forged "stay" from another site is refused
    assert stayed.status_code == 200 and stayed.json()["idle_left_s"] > 29 * 60


def test_an_ended_session_answers_the_page_s_scripts_401_not_a_log_in_page(signed_in):
    _idle_for(signed_in, 31 * 60)

    clock = signed_in.get(reverse("session_clock"), **BACKGROUND)

    assert clock.status_code == 401
    assert "_auth_user_id" not in signed_in.session
    assert signed_in.get(reverse("session_clock")).json() == {"signed_in": False, "idle_left_s": 0}


def test_the_warning_is_half_a_short_timeout(signed_in, settings):
    settings.SESSION_IDLE_TIMEOUT_S = 40
    assert signed_in.get(reverse("session_clock")).json()["warn_before_s"] == 20


def test_pages_carry_the_clock_for_signed_in_users_only(signed_in):
    page = signed_in.get(reverse("patients:list")).content.decode()
    assert f'data-session-url="{reverse("session_clock")}"' in page
    assert 'id="idle-warning"' in page and "js/session_timeout.js" in page

    anonymous = Client().get(reverse("account_login")).content.decode()
    assert "data-session-url" not in anonymous and "session_timeout.js" not in anonymous
