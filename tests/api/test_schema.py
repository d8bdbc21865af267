"""The OpenAPI schema and the docs page."""

from __future__ import annotations

import re

import yaml
from rest_framework.test import APIClient


def test_schema_lists_every_v1_operation(api):
    response = api.get("/api/schema/")

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    operations = {
        op["operationId"]
        for methods in schema["paths"].values()
        for op in methods.values()
        if isinstance(op, dict) and "operationId" in op
    }
    assert {
        "patients_list",
        "patients_create",
        "patients_retrieve",
        "patients_update",
        "lesions_create",
        "lesions_images_create",
        "analyses_retrieve",
        "analyses_fhir_retrieve",
        "reviews_list",
    } <= operations
    assert "tokenAuth" in schema["components"]["securitySchemes"]


def test_schema_documents_errors_and_upload_statuses(api):
    schema = yaml.safe_load(api.get("/api/schema/").content)

    upload = schema["paths"]["/api/v1/lesions/{id}/images/"]["post"]["responses"]
    assert {"202", "400", "404", "413", "415", "429"} <= set(upload)
    assert "Error" in schema["components"]["schemas"]


def test_docs_page_loads_no_script_from_another_host(client, staff):
    client.force_login(staff)

    page = client.get("/api/docs/").content.decode()

    sources = re.findall(r'src="([^"]+)"', page)
    assert sources
    assert all(src.startswith("/") for src in sources), sources


def test_schema_is_public_but_data_needs_login(db):
    # The schema describes the API, not patients: EHR integrators read it before having a token.
    assert APIClient().get("/api/schema/").status_code == 200
    assert APIClient().get("/api/v1/analyses/").status_code == 401
