"""/healthz and /readyz (melanoma_portal.ops), as a load balancer calls them: by the process's
address over plain HTTP, against the real database and broker the suite runs with."""

from __future__ import annotations

import json

import pytest

from tests.s3 import free_port

pytestmark = pytest.mark.django_db


def _readyz(client) -> tuple[int, dict]:
    response = client.get("/readyz")
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    return response.status_code, json.loads(response.content)["checks"]


def test_healthz_answers_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200 and response.content == b"ok\n"


def test_health_endpoints_answer_a_load_balancer_by_ip_over_http_in_production(client, settings):
    settings.ALLOWED_HOSTS = ["portal.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz", HTTP_HOST="10.0.3.7:8000").status_code == 200
    assert client.get("/readyz", HTTP_HOST="10.0.3.7:8000").status_code in (200, 503)
    # Everything else still refuses an unknown host.
    assert client.get("/accounts/login/", HTTP_HOST="10.0.3.7:8000").status_code == 400


def test_readyz_is_ready_when_database_broker_storage_and_model_answer(client, settings, tmp_path):
    (tmp_path / "media").mkdir(exist_ok=True)
    models = tmp_path / "models"
    (models / "v9").mkdir(parents=True)
    (models / "CURRENT").write_text("v9\n")
    (models / "v9" / "card.json").write_text("{}")
    (models / "v9" / "weights.pt").write_bytes(b"\0")
    settings.ML_MODELS_ROOT = models

    status, checks = _readyz(client)

    assert checks == {"database": "ok", "broker": "ok", "storage": "ok", "model": "ok"}
    assert status == 200


def test_readyz_names_an_unreachable_broker_and_a_missing_model(client, settings, tmp_path):
    settings.CELERY_BROKER_URL = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    settings.ML_MODELS_ROOT = tmp_path / "no-models"

    status, checks = _readyz(client)

    assert status == 503
    assert checks["broker"].startswith("the broker at redis://:**@127.0.0.1")
    assert "unreachable" in checks["broker"] and "s3cret" not in checks["broker"]
    assert checks["model"].startswith("no classifier installed")
    assert checks["database"] == "ok"


def test_readyz_names_a_media_folder_that_cannot_be_made(client, settings, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    settings.MEDIA_ROOT = tmp_path / "a-file" / "media"

    status, checks = _readyz(client)

    assert status == 503
    assert checks["storage"] == (
        f"the media folder {settings.MEDIA_ROOT} is missing or not writable"
    )


def test_readyz_makes_a_fresh_installations_media_folder(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "fresh" / "media"
    status, checks = _readyz(client)
    assert checks["storage"] == "ok" and settings.MEDIA_ROOT.is_dir()
