"""Celery signal handlers every task gets without naming them (connected by
melanoma_portal.celery): the web request's id travels with the task and is restored around it
in the worker (melanoma_portal.logs); each finished task is one log line and two metrics (its
outcome and duration); a worker host serves its metrics on WORKER_METRICS_PORT."""

from __future__ import annotations

import logging
import os
import time

from celery.signals import (
    before_task_publish,
    task_postrun,
    task_prerun,
    worker_ready,
)

from melanoma_portal import metrics
from melanoma_portal.logs import request_id_var

task_logger = logging.getLogger("melanoma_portal.tasks")
_running: dict[str, tuple[float, object]] = {}


@before_task_publish.connect
def carry_request_id(headers: dict | None = None, **kwargs) -> None:
    """Send the current web request's id with the task (a message header)."""
    request_id = request_id_var.get()
    if request_id and headers is not None:
        headers.setdefault("request_id", request_id)


@task_prerun.connect
def adopt_request_id(task_id: str, task, **kwargs) -> None:
    request_id = getattr(task.request, "request_id", None) or f"task-{task_id}"
    _running[task_id] = (time.perf_counter(), request_id_var.set(request_id))


@task_postrun.connect
def log_task_outcome(task_id: str, task, args=None, retval=None, state=None, **kwargs) -> None:
    """One line per finished task (task, arguments, outcome, worker, seconds) and its metrics."""
    started, token = _running.pop(task_id, (None, None))
    seconds = time.perf_counter() - started if started is not None else 0.0
    outcome = retval if isinstance(retval, str) else ("error" if state == "FAILURE" else "ok")
    metrics.TASKS.labels(task=task.name, outcome=outcome).inc()
    metrics.TASK_DURATION.labels(task=task.name).observe(seconds)
    task_logger.info(
        "task %s%s finished: %s",
        task.name,
        tuple(args or ()),
        outcome,
        extra={
            "task": task.name,
            "task_id": task_id,
            "task_args": list(args or ()),
            "outcome": outcome,
            "worker": task.request.hostname,
            "seconds": round(seconds, 3),
        },
    )
    if token is not None:
        request_id_var.reset(token)


@worker_ready.connect
def serve_worker_metrics(**kwargs) -> None:
    """With WORKER_METRICS_PORT set, this worker host serves its Prometheus metrics there
    (WORKER_METRICS_ADDR, default 127.0.0.1; a private address for a remote Prometheus)."""
    port = os.environ.get("WORKER_METRICS_PORT")
    if port:
        from prometheus_client import start_http_server

        address = os.environ.get("WORKER_METRICS_ADDR", "127.0.0.1")
        start_http_server(int(port), addr=address, registry=metrics.registry())
