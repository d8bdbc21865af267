"""Production: the same code, stricter transport and cookie settings, secrets only from env.

`DJANGO_SETTINGS_MODULE=melanoma_portal.settings.production manage.py check --deploy` must
report no issues; tests/security/test_privacy.py runs it
(test_production_settings_pass_check_deploy_with_no_warnings).
"""

import logging
import os

from django.core.exceptions import ImproperlyConfigured

from melanoma_portal.settings.base import *  # noqa: F403
from melanoma_portal.settings.base import env_list

DEBUG = False
# No default: a production server without its own secret must not start.
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 50 random characters.")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must name the portal's host(s).")

# Lock-out and throttle counters must be shared by every web process: a cache in one process's
# memory would give each its own count (and an attacker as many tries as there are processes).
if not CACHE_URL.startswith(("redis://", "rediss://")):  # noqa: F405
    raise ImproperlyConfigured(
        "CACHE_URL must name the shared Redis cache (e.g. redis://127.0.0.1:6379/1): log-in "
        "lock-out and API throttle counters live there."
    )
# Production runs behind the TLS proxy SECURE_PROXY_SSL_HEADER trusts: one proxy unless told.
ALLAUTH_TRUSTED_PROXY_COUNT = int(os.environ.get("ALLAUTH_TRUSTED_PROXY_COUNT", "1"))

SECURE_SSL_REDIRECT = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# The __Host- prefix binds the cookie to this exact host over HTTPS (no subdomain can set it).
SESSION_COOKIE_NAME = "__Host-sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken"
# Doctors and clinic admins cannot opt out of two-factor authentication in production.
MFA_REQUIRED_ROLES = env_list("MFA_REQUIRED_ROLES", "admin,doctor")

# Patient images in the clear on the portal's disk: said at every start (web, worker, beat), and
# by `check --deploy` as diagnosis.W001. Silencing that check (an encrypted volume) quiets both.
if (
    not IMAGE_ENCRYPTION_KEY  # noqa: F405
    and not os.environ.get("AWS_STORAGE_BUCKET_NAME")
    and "diagnosis.W001" not in SILENCED_SYSTEM_CHECKS  # noqa: F405
):
    logging.getLogger("melanoma_portal").warning(
        "IMAGE_ENCRYPTION_KEY is not set: patient images and heatmaps are written to %s "
        "unencrypted (docs/deployment.md).",
        MEDIA_ROOT,  # noqa: F405
    )

# Logs as one JSON object a line unless LOG_FORMAT says otherwise (melanoma_portal.logs).
if not os.environ.get("LOG_FORMAT"):
    LOG_FORMAT = "json"
    LOGGING["handlers"]["console"]["formatter"] = "json"  # noqa: F405
    CELERY_WORKER_HIJACK_ROOT_LOGGER = False
