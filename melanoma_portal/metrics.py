"""Prometheus metrics (prometheus-client), for the web processes and the worker hosts.

Web: request latency per view (RequestMetricsMiddleware), and at each scrape of /metrics the
analyses by status and each queue's depth (melanoma_portal.ops, from the database and the
broker, so every host's work is counted once whichever host is scraped).
Workers: tasks by outcome and their duration (melanoma_portal.celery), inference time and gate
rejections (diagnosis.tasks), served on WORKER_METRICS_PORT by each worker host.

gunicorn and a prefork worker run several processes; with PROMETHEUS_MULTIPROC_DIR set (the
units in deploy/ set it) each process writes its samples there and a scrape adds them up
(prometheus-client's multiprocess mode). Without it, samples stay in the one process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
if os.environ.get(MULTIPROC_DIR_ENV):
    # Each process writes its samples there from its first metric on; a missing folder would
    # stop every process of the portal (manage.py included) at import.
    os.makedirs(os.environ[MULTIPROC_DIR_ENV], exist_ok=True)

REQUEST_LATENCY = Histogram(
    "portal_http_request_duration_seconds",
    "Time from request to response in the Django process, by view.",
    ["method", "view", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TASKS = Counter(
    "portal_tasks_total",
    "Celery tasks finished on this worker host, by task and outcome (the task's return value, "
    "e.g. done, failed, skipped for analyses; error when it raised).",
    ["task", "outcome"],
)
TASK_DURATION = Histogram(
    "portal_task_duration_seconds",
    "Wall time of a Celery task on this worker host.",
    ["task"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)
RUNTIME_THROUGHPUT = Gauge(
    "portal_ml_runtime_images_per_second",
    "Images per second each candidate runtime did on this worker host's CPU when the model "
    "loaded (ML_RUNTIME=auto; NaN when forced); served=true marks the one being served.",
    ["model_version", "runtime", "served"],
    multiprocess_mode="max",
)
INFERENCE = Histogram(
    "portal_inference_seconds",
    "The classifier's forward pass for one image (without heatmaps), by model version.",
    ["model_version"],
    buckets=(0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
)
QUEUE_WAIT = Histogram(
    "portal_analysis_queue_wait_seconds",
    "Time an analysis waited between upload (or retry) and a worker starting it.",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
)
ANALYSIS_BATCH_SIZE = Histogram(
    "portal_analysis_batch_size",
    "How many analyses a worker's task ran through the network together (1: the queue was "
    "empty but for its own; ANALYSIS_BATCH_SIZE: a full batch of a backlog).",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
GATE_REJECTIONS = Counter(
    "portal_gate_rejections_total",
    "Images the image gate refused to classify (not dermoscopy, too blurred...), by reason.",
    ["reason"],
)


def registry() -> CollectorRegistry:
    """The registry a scrape reads: every process's samples in multiprocess mode, else this
    process's."""
    if os.environ.get(MULTIPROC_DIR_ENV):
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)
        return collected
    return REGISTRY


def exposition(extra: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """The text a scrape gets: the registry's samples, then `extra`'s (scrape-time gauges)."""
    body = generate_latest(registry())
    if extra is not None:
        body += generate_latest(extra)
    return body, CONTENT_TYPE_LATEST


class RequestMetricsMiddleware:
    """Observes every request's latency, labelled by the URL pattern's name (never the path:
    ids in paths would make a series per patient)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match else "") or "unmatched"
        REQUEST_LATENCY.labels(
            method=request.method, view=view, status=f"{response.status_code // 100}xx"
        ).observe(time.perf_counter() - started)
        return response
