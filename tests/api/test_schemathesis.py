"""Schemathesis against the live API as an authenticated clinic user: no 5xx, and every
response matches the OpenAPI schema (status code, content type, body).

It runs the `st` CLI against pytest-django's live_server, with a token of a staff member whose
clinic has a patient, a lesion and a finished analysis, so the generated ids sometimes hit real
records (and their 200 responses are checked too). Bounded for CI on 2 cores: a fixed seed, at
most MAX_EXAMPLES examples per operation, the examples and fuzzing phases.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from rest_framework.throttling import UserRateThrottle

from tests import factories
from tests.api.conftest import PROBABILITIES, token_client

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


@pytest.fixture
def seeded_clinic(transactional_db, staff, clinic):
    from django.utils import timezone

    from diagnosis.models import Analysis

    patient = factories.PatientFactory(clinic=clinic, created_by=staff)
    lesion = factories.LesionFactory(patient=patient)
    image = factories.DermoscopicImageFactory(lesion=lesion)
    done = Analysis.objects.create(
        image=image,
        status="done",
        finished_at=timezone.now(),
        probabilities=PROBABILITIES,
        top_class="mel",
        melanoma_probability=0.62,
        risk_tier="high",
        model_version="effnet-test-1",
    )
    Analysis.objects.create(image=image)
    factories.ReferralFactory(analysis=done)
    return staff


@pytest.mark.integration
@pytest.mark.slow
def test_live_api_conforms_to_its_schema_and_never_answers_5xx(
    live_server, seeded_clinic, monkeypatch, tmp_path, settings
):
    # Thousands of requests in a minute are the point here, not what the throttles are for.
    unlimited = "1000000/minute"
    monkeypatch.setattr(
        UserRateThrottle,
        "THROTTLE_RATES",
        {"user": unlimited, "upload": unlimited, "status": unlimited},
    )
    # Generated `?wait=` values on the queued analysis would each hold a request for 25 s.
    settings.STATUS_WAIT_MAX_S = 0.2
    client = token_client(seeded_clinic)
    token = client._credentials["HTTP_AUTHORIZATION"]
    st = Path(sys.executable).with_name("st")
    # Fetched here with a generous timeout (the first schema build imports a lot, and the CLI
    # gives up on a schema after 10 s on a busy 2-core machine); the CLI tests the live URL.
    schema = requests.get(f"{live_server.url}/api/schema/?format=json", timeout=120)
    assert schema.status_code == 200
    schema_file = tmp_path / "openapi.json"
    schema_file.write_bytes(schema.content)
    started = time.monotonic()

    result = subprocess.run(
        [
            str(st),
            "run",
            str(schema_file),
            "--url",
            live_server.url,
            "--header",
            f"Authorization: {token}",
            "--checks",
            CHECKS,
            "--phases",
            "examples,fuzzing",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            "20260601",
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--report-dir",
            str(tmp_path),
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )

    elapsed = time.monotonic() - started
    print(result.stdout[-6000:], result.stderr[-3000:], f"schemathesis took {elapsed:.0f}s")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
