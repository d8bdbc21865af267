"""Endpoints for load balancers and monitoring: /healthz, /readyz and /metrics.

- `/healthz`: the process is alive and serving (no dependency touched). 200 "ok".
- `/readyz`: this process can do its work: the database answers and its migrations are all
  applied, the broker accepts connections, the storage is reachable, and a classifier is
  installed. 200 when all are, else 503; the JSON names each check and, for a failure, what
  failed in plain words. A load balancer sends traffic only to a ready web process. It also
  says whether celery beat is alive (`beat`, and `"status": "degraded"` when it is not),
  without taking the process out of rotation for it, and which runtime the workers serve the
  model with (`runtime`: chosen by ML_RUNTIME, with the figures measured at the worker's start).
- `/metrics`: Prometheus text (melanoma_portal.metrics) plus, computed at scrape time, the
  analyses by status (database) and each queue's depth and consumers (broker). Only with
  `Authorization: Bearer $METRICS_TOKEN`; without METRICS_TOKEN set it does not exist (404).

OpsEndpointsMiddleware answers them first in the middleware chain: no session, no host check,
no HTTPS redirect, so a load balancer or Prometheus may call a web process by its address over
plain HTTP on the private network. nginx (deploy/nginx/portal.conf) lets only /healthz in from
outside. READINESS_CHECKS is a list of (name, check) pairs; a check returns None when ready or
a sentence saying what is wrong, and may be appended to (a scheduler's heartbeat, say).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from prometheus_client import CollectorRegistry, Gauge

from melanoma_portal import metrics

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_S = 3.0


def check_database() -> str | None:
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        return f"the database did not answer ({type(exc).__name__}: {exc})".strip()
    if pending:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in pending[:5])
        return f"{len(pending)} migration(s) not applied yet: {names} (run manage.py migrate)"
    return None


def check_broker() -> str | None:
    from kombu import Connection

    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_FOLDER)
        if not os.access(folder, os.W_OK):
            return f"the filesystem broker's folder {folder} is missing or not writable"
        return None
    try:
        with Connection(
            url,
            connect_timeout=BROKER_TIMEOUT_S,
            transport_options=dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS),
        ) as connection:
            connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)
            client = getattr(connection.default_channel, "client", None)
            if client is not None and hasattr(client, "ping"):
                client.ping()  # Redis connects lazily: make it answer
    except Exception as exc:
        return f"the broker at {_without_password(url)} is unreachable ({type(exc).__name__})"
    return None


def check_storage() -> str | None:
    storage = default_storage
    try:
        bucket = getattr(storage, "bucket", None)  # an S3 storage (melanoma_portal.storage_s3)
        if bucket is not None:
            bucket.meta.client.head_bucket(Bucket=bucket.name)
            return None
        location = Path(storage.location)
    except Exception as exc:
        name = getattr(getattr(storage, "bucket", None), "name", "") or "?"
        return f"the storage bucket {name!r} is unreachable ({type(exc).__name__}: {exc})"
    try:
        location.mkdir(parents=True, exist_ok=True)  # as the first upload would
    except OSError:
        pass
    if not location.is_dir() or not os.access(location, os.W_OK):
        return f"the media folder {location} is missing or not writable"
    return None


def check_model() -> str | None:
    # Files only: a web process need not import torch to know a classifier is installed.
    root = Path(settings.ML_MODELS_ROOT)
    current = root / "CURRENT"
    if not current.is_file():
        return f"no classifier installed: {current} not found"
    version = current.read_text().strip()
    missing = [f for f in ("card.json", "weights.pt") if not (root / version / f).is_file()]
    if not version or missing:
        return f"the classifier {version or '(empty CURRENT)'} is incomplete: {missing} missing"
    return None


READINESS_CHECKS: list[tuple[str, Callable[[], str | None]]] = [
    ("database", check_database),
    ("broker", check_broker),
    ("storage", check_storage),
    ("model", check_model),
]


def readiness() -> tuple[bool, dict[str, str]]:
    results = {}
    for name, check in READINESS_CHECKS:
        try:
            problem = check()
        except Exception as exc:  # a check that breaks is a failed check, never a 500
            problem = f"the check failed ({type(exc).__name__}: {exc})"
        results[name] = problem or "ok"
        if problem:
            logger.warning("not ready: %s: %s", name, problem)
    return all(value == "ok" for value in results.values()), results


def _without_password(url: str) -> str:
    from kombu.utils.url import maybe_sanitize_url

    return maybe_sanitize_url(url)


def scrape_time_metrics() -> CollectorRegistry:
    """Gauges read at each scrape: analyses by status, queue depth and consumers per queue."""
    from diagnosis.models import Analysis

    registry = CollectorRegistry()
    by_status = Gauge(
        "portal_analyses",
        "Analyses in the database by status (queued, running, done, failed...).",
        ["status"],
        registry=registry,
    )
    for row in Analysis.objects.values("status").order_by().annotate(n=Count("id")):
        by_status.labels(status=row["status"]).set(row["n"])
    depth = Gauge(
        "portal_queue_messages",
        "Messages waiting in the broker queue (not yet taken by a worker).",
        ["queue"],
        registry=registry,
    )
    consumers = Gauge(
        "portal_queue_consumers",
        "Workers consuming the queue (RabbitMQ reports it; Redis always says 0).",
        ["queue"],
        registry=registry,
    )
    for queue, (messages, consuming) in queue_depths().items():
        depth.labels(queue=queue).set(messages)
        consumers.labels(queue=queue).set(consuming)
    return registry


def queue_depths() -> dict[str, tuple[int, int]]:
    """{queue: (messages waiting, consumers)} for settings.PORTAL_QUEUES; a queue the broker
    has not declared yet holds nothing. Empty when the broker cannot be reached."""
    from amqp.exceptions import NotFound
    from kombu.exceptions import ChannelError

    from melanoma_portal.celery import app

    depths = {}
    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)
            for queue in settings.PORTAL_QUEUES:
                channel = connection.channel()  # a failed passive declare closes an AMQP channel
                try:
                    _, messages, consuming = channel.queue_declare(queue=queue, passive=True)
                except (ChannelError, NotFound):
                    messages, consuming = 0, 0
                finally:
                    try:
                        channel.close()
                    except Exception:  # noqa: S110 - the broker closed it already
                        pass
                depths[queue] = (messages, consuming)
    except Exception:
        logger.exception("metrics: the broker could not be asked for queue depths")
    return depths


def _json(data: dict, status: int) -> HttpResponse:
    response = HttpResponse(json.dumps(data), content_type="application/json", status=status)
    response["Cache-Control"] = "no-store"
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("ok\n", content_type="text/plain")
    response["Cache-Control"] = "no-store"
    return response


def beat_problem() -> str | None:
    """A sentence when celery beat's stale sweep has missed three of its runs, else None.

    Not a readiness check: a web process serves pages fine without beat, so it stays in
    rotation (200) and says `"status": "degraded"`; monitoring alerts on status != "ok"."""
    from diagnosis.selectors import sweep_late

    try:
        return sweep_late()
    except Exception as exc:  # the database check above names a database that is down
        return f"unknown ({type(exc).__name__})"


def served_runtime() -> dict | str:
    """The runtime the last worker to load a model serves it with, and what it measured
    (diagnosis.classifier.runtime_record, through the shared cache); words when none has."""
    from diagnosis.classifier import runtime_report

    try:
        report = runtime_report()
    except Exception as exc:  # the cache down is the broker's or the cache's problem, not ours
        return f"unknown ({type(exc).__name__})"
    return report or (
        "unknown: no worker has recorded the runtime it serves "
        "(in the shared cache or this host's var/ folder)"
    )


def readyz(request: HttpRequest) -> HttpResponse:
    ready, checks = readiness()
    beat = beat_problem() if checks.get("database") == "ok" else "unknown"
    status = "unavailable" if not ready else ("degraded" if beat else "ok")
    body = {
        "status": status,
        "ready": ready,
        "checks": checks,
        "beat": beat or "ok",
        # Informational, like beat: which runtime the workers serve and how fast each ran.
        "runtime": served_runtime(),
    }
    return _json(body, 200 if ready else 503)


def metrics_view(request: HttpRequest) -> HttpResponse:
    token = getattr(settings, "METRICS_TOKEN", "")
    if not token:
        return HttpResponse("Not found\n", status=404, content_type="text/plain")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        response = HttpResponse(
            "Metrics need 'Authorization: Bearer <METRICS_TOKEN>'.\n",
            status=401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics.exposition(scrape_time_metrics())
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response


ENDPOINTS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz,
    "/readyz": readyz,
    "/metrics": metrics_view,
}


class OpsEndpointsMiddleware:
    """Answers ENDPOINTS (GET or HEAD) before any other middleware runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        endpoint = ENDPOINTS.get(request.path_info.rstrip("/") or "/")
        if endpoint is None or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        return endpoint(request)
