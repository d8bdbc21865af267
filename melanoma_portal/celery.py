"""The Celery application shared by the web process (to enqueue) and the workers."""

import logging
import os

from celery import Celery
from celery.signals import beat_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "melanoma_portal.settings.dev")

# DjangoTask adds delay_on_commit(): a task is only sent once the row it names is committed.
app = Celery("melanoma_portal", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


@beat_init.connect
def sweep_when_beat_starts(sender=None, **kwargs) -> None:
    """Beat first sends an interval task a whole interval after it starts. Send the stale
    sweep at once instead: analyses a crash left running are re-queued without waiting, and
    the dashboard sees beat alive (diagnosis.selectors.housekeeping). By name: this module
    imports no app. Not inside a transaction: beat holds none."""
    try:
        app.send_task("diagnosis.tasks.requeue_stale_analyses")
    except Exception:  # the broker is down: the schedule sends it again later
        logger.exception("could not send the stale sweep at beat's start")


# Request ids carried into tasks, task outcomes in the logs and metrics, and each worker host's
# metrics endpoint: signal handlers, connected by importing them (issue 17).
from melanoma_portal import task_signals  # noqa: E402, F401
