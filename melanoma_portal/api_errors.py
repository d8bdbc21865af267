"""JSON errors for the REST API: one shape, a sentence a person can act on, the right status.

Every error the API answers looks like

    {"status": 404, "code": "not_found", "message": "No such patient.", "errors": {...}}

where `errors` (field name -> messages) is present only for invalid input. Mobile and EHR clients
show `message` as it is, so it says what went wrong and what to do, never a stack trace.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from melanoma_portal.throttling import refused_authentication_throttled

ERROR_SCHEMA_NAME = "Error"


_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "throttled",
}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"field" or "field.sub": [messages]}."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, name))
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        out = {}
        for index, item in enumerate(detail):
            out.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return out
    return {prefix or "non_field_errors": [str(detail)]}


def _summary(errors: dict[str, list[str]]) -> str:
    parts = []
    for field, messages in errors.items():
        text = " ".join(messages)
        parts.append(text if field == "non_field_errors" else f"{field}: {text}")
    return "Invalid input. " + " ".join(parts)


def error_body(status_code: int, message: str, *, code: str | None = None, errors=None) -> dict:
    body: dict[str, Any] = {
        "status": status_code,
        "code": code or _CODES.get(status_code, "error"),
        "message": message,
    }
    if errors:
        body["errors"] = errors
    return body


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every expected failure becomes the one JSON error shape."""
    # An app's exception that knows its HTTP status and its message for the user (diagnosis's
    # ImageRejected: 413, 415 or 400) is answered in the one error shape; this module imports
    # no app.
    code = getattr(exc, "api_status_code", None)
    if isinstance(code, int):
        response = Response(error_body(code, str(exc)), status=code)
        # A quota that says when it frees up (diagnosis's upload quota: 429).
        retry_after = getattr(exc, "retry_after_s", None)
        if isinstance(retry_after, int):
            response["Retry-After"] = str(retry_after)
        return response
    if isinstance(exc, RequestDataTooBig):
        return Response(
            error_body(413, "The request is too large."),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, DjangoValidationError):
        # A service's own check (a duplicate MRN, a value the model refuses): the client's input.
        detail = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or "You may not do this.")
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        # DRF throttles only requests that passed authentication; a refused one counts here.
        wait = refused_authentication_throttled(context["request"], context.get("view"))
        if wait is not None:
            exc = exceptions.Throttled(wait=wait)

    response = exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django's 500 handling and logging take over
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        response.data = error_body(response.status_code, _summary(errors), errors=errors)
        return response
    detail = getattr(exc, "detail", "")
    message = str(detail) if not isinstance(detail, dict | list) else _summary(_flatten(detail))
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        message = f"Too many requests; try again in {int(exc.wait) + 1} seconds."
    code = getattr(detail, "code", None) if not isinstance(detail, dict | list) else None
    code = _CODES.get(response.status_code) or code
    response.data = error_body(response.status_code, message, code=code)
    return response


def _error_schema() -> dict:
    return {
        "type": "object",
        "description": "Every API error: a message to show, and per-field messages for bad input.",
        "properties": {
            "status": {"type": "integer"},
            "code": {"type": "string"},
            "message": {"type": "string"},
            "errors": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
        },
        "required": ["status", "code", "message"],
    }


_ERROR_DESCRIPTIONS = {
    "400": "Invalid input (a missing or bad field, an unusable image).",
    "401": "No or an invalid token.",
    "403": "Your role or clinic may not do this.",
    "404": "No such record in your clinic.",
    "413": "The file or image is too large.",
    "415": "Not a JPEG or PNG image, or a body type this endpoint does not read.",
    "429": "Too many requests; wait and try again.",
}


def document_error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: document the error shape on every operation, so
    clients (and schemathesis) know a 404 or 429 is part of the contract, not a surprise."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_SCHEMA_NAME] = (
        _error_schema()
    )
    ref = {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            codes = ["400", "401", "403", "404", "429"]
            body = operation.get("requestBody", {}).get("content", {})
            if "multipart/form-data" in body:
                codes += ["413", "415"]
            elif body:
                codes += ["415"]
            media_types = {
                media
                for answer in responses.values()
                for media in answer.get("content", {})
                if media.endswith("json")
            } or {"application/json"}
            for code in codes:
                responses.setdefault(
                    code,
                    {
                        "description": _ERROR_DESCRIPTIONS[code],
                        "content": {media: {"schema": ref} for media in sorted(media_types)},
                    },
                )
    return result


# Ids are PostgreSQL bigints; a larger number cannot name a row.
_MAX_ID = 2**63 - 1


def parse_id(value: str, what: str) -> int:
    """A record id from the URL. The API's routes accept any path segment so that a malformed
    id gets the same JSON 404 as a missing record, instead of Django's HTML 'page not found'."""
    if not value.isascii() or not value.isdigit() or not 0 < int(value) <= _MAX_ID:
        raise exceptions.NotFound(f"No such {what}.")
    return int(value)
