"""`?wait=` on the status endpoints (issue 15): the answer comes as soon as the worker stores
the result, not at the next poll, and never holds more web threads than it may."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.urls import reverse

from diagnosis.models import Analysis, AnalysisStatus
from diagnosis.selectors import analysis_wait as analysis_wait_module
from tests import factories
from tests.api.conftest import PROBABILITIES, token_client


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def queued(lesion):
    return factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))


def _finish_later(analysis_id: int, after_s: float) -> threading.Thread:
    """What the worker does, from another thread with its own database connection."""

    def finish() -> None:
        time.sleep(after_s)
        try:
            Analysis.objects.filter(pk=analysis_id).update(
                status=AnalysisStatus.DONE, probabilities=PROBABILITIES, model_version="test"
            )
        finally:
            connection.close()

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


def _status(client, analysis, wait=None):
    url = reverse("diagnosis:analysis_status", args=[analysis.pk])
    started = time.monotonic()
    response = client.get(url, {"wait": wait} if wait is not None else {})
    return response, time.monotonic() - started


@pytest.mark.django_db(transaction=True)
def test_waiting_status_answers_soon_after_the_result_is_stored(staff_client, queued):
    thread = _finish_later(queued.pk, after_s=0.5)

    response, elapsed = _status(staff_client, queued, wait=10)
    thread.join()

    assert response.json()["status"] == "done"
    assert response.json()["held"] == 10
    # Stored after 0.5 s; looked at every 0.1 s: well before the 10 s the client allowed.
    assert 0.5 <= elapsed < 1.5


@pytest.mark.django_db(transaction=True)
def test_api_status_waits_for_the_result_too(staff, queued):
    thread = _finish_later(queued.pk, after_s=0.3)

    started = time.monotonic()
    response = token_client(staff).get(f"/api/v1/analyses/{queued.pk}/", {"wait": 10})
    elapsed = time.monotonic() - started
    thread.join()

    assert response.json()["status"] == "done"
    assert response["X-Status-Held"] == "10"
    assert 0.3 <= elapsed < 1.5


def test_a_wait_with_no_change_ends_at_its_time_still_pending(staff_client, queued):
    response, elapsed = _status(staff_client, queued, wait=0.4)

    assert response.json()["status"] == "queued"
    assert response.json()["held"] == 0.4
    assert elapsed >= 0.4


def test_without_wait_or_once_finished_the_answer_comes_at_once(staff_client, queued, lesion):
    done = factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))

    plain, plain_s = _status(staff_client, queued)
    finished, finished_s = _status(staff_client, done, wait=10)

    assert plain.json()["held"] == 0 and plain_s < 1
    assert finished.json()["held"] == 0 and finished_s < 1


def test_with_every_waiting_place_taken_the_answer_comes_at_once(staff_client, queued, settings):
    # One place, held by another request: not STATUS_WAIT_SLOTS = 0, which turns waiting off.
    settings.STATUS_WAIT_SLOTS = 1
    place = analysis_wait_module._slots(1)
    assert place.acquire(blocking=False)
    try:
        response, elapsed = _status(staff_client, queued, wait=10)
    finally:
        place.release()
    settings.STATUS_WAIT_SLOTS = 0  # waiting turned off
    off, off_s = _status(staff_client, queued, wait=10)

    assert response.json()["held"] == 0
    assert elapsed < 1
    assert off.json()["held"] == 0 and off_s < 1


def test_the_wait_is_capped(staff_client, queued, settings):
    settings.STATUS_WAIT_MAX_S = 0.2

    response, elapsed = _status(staff_client, queued, wait=3600)

    assert response.json()["held"] == 0.2
    assert elapsed < 1


def test_a_wait_that_is_not_a_number_is_refused_in_words(staff_client, staff, queued):
    page, _ = _status(staff_client, queued, wait="soon")
    api = token_client(staff).get(f"/api/v1/analyses/{queued.pk}/", {"wait": "soon"})

    assert page.status_code == 400
    assert "wait must be a number of seconds" in page.json()["error"]
    assert api.status_code == 400
    assert "wait must be a number of seconds" in api.json()["message"]
