"""/metrics (melanoma_portal.ops): only with the token; request latency per view, analyses by
status from the database and each queue's depth from the real broker."""

from __future__ import annotations

import pytest

from diagnosis.services.analysis import _enqueue
from tests import factories
from tests.prometheus import sample as _sample
from tests.worker import purge_queues, require_shared_services

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "metrics-token-for-tests"


def test_metrics_do_not_exist_without_a_token_and_refuse_a_wrong_one(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401


def test_metrics_count_requests_analyses_and_queued_messages(client, settings, staff):
    require_shared_services()
    settings.METRICS_TOKEN = TOKEN
    purge_queues()
    queued = [factories.AnalysisFactory(image__lesion__patient__clinic=staff.clinic)]
    queued.append(factories.AnalysisFactory(image=queued[0].image))
    factories.DoneAnalysisFactory(image=queued[0].image)
    for analysis in queued:
        _enqueue(analysis)
    client.force_login(staff)
    client.get("/")

    try:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    finally:
        purge_queues()

    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert _sample(text, "portal_analyses", status="queued") == 2
    assert _sample(text, "portal_analyses", status="done") == 1
    assert _sample(text, "portal_queue_messages", queue="inference") == 2
    assert _sample(text, "portal_queue_messages", queue="housekeeping") == 0
    latency = _sample(
        text, "portal_http_request_duration_seconds_count", view="diagnosis:dashboard"
    )
    assert latency is not None and latency >= 1
    # Paths never become labels: one series per view, not per patient.
    assert "/patients/" not in text
