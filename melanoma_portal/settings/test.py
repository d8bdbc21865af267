"""Test runs: fast password hashing and in-memory email; services still come from the env."""

import os

from melanoma_portal.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Security defaults that would get in the way of unrelated tests; tests/security and
# tests/accounts switch them back on with pytest-django's `settings` fixture.
MFA_REQUIRED_ROLES: list[str] = []
ACCOUNT_RATE_LIMITS = False
# Worker fault tests: a worker started with this > 0 pauses after claiming an analysis, so the
# test can kill it mid-task (tests/fault_hooks.py, installed here and nowhere else).
ANALYSIS_TEST_PAUSE_S = float(os.environ.get("ANALYSIS_TEST_PAUSE_S", "0"))
# The suite serves the PyTorch reference unless a run names a runtime: its tests expect
# Grad-CAM's heatmaps and the reference's numbers, and must not time runtimes at every model
# load. tests/diagnosis/test_served_runtime.py sets it per test (auto, onnx-fp32).
ML_RUNTIME = os.environ.get("ML_RUNTIME", "torch")
INSTALLED_APPS = [*INSTALLED_APPS, "tests.fault_hooks.FaultHooksConfig"]  # noqa: F405
