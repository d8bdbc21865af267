"""The Celery application shared by the web process (to enqueue) and the workers."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "melanoma_portal.settings.dev")

# DjangoTask adds delay_on_commit(): a task is only sent once the row it names is committed.
app = Celery("melanoma_portal", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Request ids carried into tasks, task outcomes in the logs and metrics, and each worker host's
# metrics endpoint: signal handlers, connected by importing them (issue 17).
from melanoma_portal import task_signals  # noqa: E402, F401
