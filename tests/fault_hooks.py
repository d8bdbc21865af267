"""A test hook for the worker fault tests (tests/security/test_worker_faults.py), off by default.

Installed only by the test settings (melanoma_portal/settings/test.py adds this app), so it
never ships in a production process. With settings.ANALYSIS_TEST_PAUSE_S > 0 (read from the
environment by the test settings), a worker pauses that long right after it has claimed an
analysis (status `running` committed) and before it loads the model: a window in which a test
can SIGKILL the worker mid-task, every time, without mocking anything. Only the first attempt
pauses, so the redelivered task runs at speed.
"""

from __future__ import annotations

import time

from django.apps import AppConfig
from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save


def _pause_after_claim(sender, instance, update_fields=None, **kwargs) -> None:
    if update_fields and "status" in update_fields and instance.status == "running":
        if instance.attempts == 1:
            transaction.on_commit(lambda: time.sleep(settings.ANALYSIS_TEST_PAUSE_S))


def install() -> None:
    if getattr(settings, "ANALYSIS_TEST_PAUSE_S", 0) <= 0:
        return
    from diagnosis.models import Analysis

    post_save.connect(_pause_after_claim, sender=Analysis, dispatch_uid="test_pause_after_claim")


class FaultHooksConfig(AppConfig):
    name = "tests"
    label = "test_fault_hooks"
    verbose_name = "Test-only fault hooks"

    def ready(self) -> None:
        install()
