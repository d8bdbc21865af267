"""Settings shared by every environment; everything that differs between machines is read from
the environment here, once, with defaults that run on one laptop with no services at all
(SQLite, files on disk, a filesystem Celery broker)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent
# Files at rest: whatever a portal process creates (the SQLite database and its journal, the
# filesystem broker's messages, var/ itself) is readable by its owner and group only, never by
# other users of the machine: 0640 files, 0750 folders. Set here because every process (web,
# worker, beat, manage.py) reads these settings before it writes anything; bin/ scripts set
# the same umask for the shell. PORTAL_UMASK=077 makes it owner-only (0600).
PORTAL_UMASK = int(os.environ.get("PORTAL_UMASK", "027"), 8)
os.umask(PORTAL_UMASK)
# Runtime state (SQLite file, uploaded media, the filesystem broker) lives outside the code and
# outside the static root.
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))
# A fresh clone has no var/ yet; SQLite will not create its folder.
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me-in-production")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
# Check ids a deployment has decided to accept, e.g. diagnosis.W001 on an encrypted volume.
SILENCED_SYSTEM_CHECKS = env_list("DJANGO_SILENCED_SYSTEM_CHECKS")

INSTALLED_APPS = [
    # The portal's admin site: clinic admins see their own clinic (accounts.admin_site).
    "accounts.admin_apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "accounts",
    "patients",
    "diagnosis",
    "reports",
    # The project's own commands: backup and restore (melanoma_portal.backup).
    "melanoma_portal",
]

MIDDLEWARE = [
    # Request latency for Prometheus, the request id for the logs, then /healthz, /readyz and
    # /metrics answered before host checks and HTTPS redirects (melanoma_portal.ops).
    "melanoma_portal.metrics.RequestMetricsMiddleware",
    "melanoma_portal.logs.RequestIdMiddleware",
    "melanoma_portal.ops.OpsEndpointsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "accounts.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Before CommonMiddleware, so a CORS preflight is answered before any redirect.
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.SessionTimeoutMiddleware",
    "accounts.mfa.MFARequiredMiddleware",
]

ROOT_URLCONF = "melanoma_portal.urls"
WSGI_APPLICATION = "melanoma_portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
    )
}
# SQLite, the embedded default, is written by the web server and the worker at once. WAL lets
# readers go on while one process writes; IMMEDIATE takes the write lock when a transaction
# begins, so two writers queue for it (within the busy timeout) instead of one failing at once
# with "database is locked" when its read turns into a write; synchronous=NORMAL is WAL's
# recommended durability. A worker that still finds the database busy retries the analysis
# (diagnosis.tasks).
SQLITE_BUSY_TIMEOUT_S = float(os.environ.get("SQLITE_BUSY_TIMEOUT_S", "20"))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        transaction_mode="IMMEDIATE",
        timeout=SQLITE_BUSY_TIMEOUT_S,
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
# PostgreSQL in production: DATABASE_URL is a role that owns nothing, DATABASE_MIGRATE_URL the
# same database as its owner; `manage.py migrate` logs in as the owner and then grants the
# portal's role read-and-append on the audit trail (accounts.db_roles, docs/deployment.md).
DATABASE_MIGRATE_URL = os.environ.get("DATABASE_MIGRATE_URL", "")
# Several test runs may share one PostgreSQL server; each can name its own test database.
if os.environ.get("DATABASE_TEST_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["DATABASE_TEST_NAME"]}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Both look an address up in User.email alone, never in allauth's EmailAddress table (issue 11).
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "accounts.backends.AccountEmailBackend",
]

# django-allauth: email + password, no open sign-up (a clinic admin creates every account).
ACCOUNT_ADAPTER = "accounts.adapters.ClinicAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = False
# A password reset is mailed to the account whose own address was typed, and to no other.
ACCOUNT_FORMS = {"reset_password": "accounts.forms.PasswordResetForm"}
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "diagnosis:dashboard"
LOGOUT_REDIRECT_URL = "account_login"

# --- Security: log-in, sessions, cookies, headers (issue 5) ---------------------------------
# 5 failed log-ins in 15 minutes lock the account (a clinic admin can unlock it); a client
# address is throttled only after 50, so one person cannot lock out everyone who shares a
# network or the proxy (accounts.lockout). The address first: a refused address spends
# nobody's account count. "login" (allauth's default, every attempt) stops a flood sooner.
ACCOUNT_RATE_LIMITS = {"login_failed": "50/15m/ip,5/15m/key", "login": "30/m/ip"}
# How many proxies of our own append to X-Forwarded-For; only their entries are believed, for
# lock-out, throttles and the audit trail alike (melanoma_portal.client_address). 0: no proxy,
# the header is ignored. Production's default is 1 (settings/production.py).
ALLAUTH_TRUSTED_PROXY_COUNT = int(os.environ.get("ALLAUTH_TRUSTED_PROXY_COUNT", "0"))
# Two-factor authentication: an authenticator app (TOTP) with recovery codes as the fallback.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Melanoma Portal"
# Roles that must set up an authenticator before doing anything (accounts.mfa).
MFA_REQUIRED_ROLES = env_list("MFA_REQUIRED_ROLES", "admin,doctor")
# Idle: no request for this long ends the session. Absolute: no session outlives this.
SESSION_IDLE_TIMEOUT_S = int(os.environ.get("SESSION_IDLE_TIMEOUT_S", str(30 * 60)))
SESSION_ABSOLUTE_TIMEOUT_S = int(os.environ.get("SESSION_ABSOLUTE_TIMEOUT_S", str(12 * 3600)))
# Pages warn this long before the idle log-out, with a button to stay signed in.
SESSION_IDLE_WARNING_S = int(os.environ.get("SESSION_IDLE_WARNING_S", "60"))
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_TIMEOUT_S
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
# Secure (HTTPS-only) cookies: forced on in production settings, switchable here for staging.
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Served by accounts.middleware.SecurityHeadersMiddleware, the one place the policy is written.
# Scripts only from this server. Styles from this server and, for now, inline: Django's admin,
# allauth's pages and the API docs viewers ship inline styles that a strict policy would break
# (tests/security/test_templates_csp.py names them); the portal's own templates use none.
CONTENT_SECURITY_POLICY = os.environ.get(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)
PERMISSIONS_POLICY = "camera=(self), microphone=(), geolocation=(), payment=(), usb=()"

# The cache holds the log-in lock-out and API throttle counters, so every web process must
# share it: Redis when CACHE_URL (or REDIS_URL) names one; production refuses to start without.
# Not derived from the broker URL on purpose: cache.clear() empties its whole Redis database
# and must never take queued analyses with it.
CACHE_URL = os.environ.get("CACHE_URL") or os.environ.get("REDIS_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "portal",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "portal@melanoma-portal.local")

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
# Patient images: never under STATIC_ROOT and never served by URL; a view checks the clinic.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = None
# Django chmods every stored file to FILE_UPLOAD_PERMISSIONS whatever the umask (its default is
# 0644, world-readable): patient images and heatmaps are 0640, their folders 0750, or stricter
# with PORTAL_UMASK.
FILE_UPLOAD_PERMISSIONS = 0o666 & ~PORTAL_UMASK
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o777 & ~PORTAL_UMASK


def default_storage_from_env(env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Where patient files (originals, thumbnails, heatmaps) are kept, from the environment.

    An S3 bucket when AWS_STORAGE_BUCKET_NAME names one (AWS_S3_ENDPOINT_URL for any other S3
    server; credentials from boto3's usual chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or an
    instance role), else the portal's own disk under MEDIA_ROOT. Either way encrypted by the
    portal first when IMAGE_ENCRYPTION_KEY is set. A function so that the tests build the very
    same configuration for their own S3 server.
    """
    encrypted = bool(env.get("IMAGE_ENCRYPTION_KEY"))
    bucket = env.get("AWS_STORAGE_BUCKET_NAME", "")
    if not bucket:
        if encrypted:
            return {"BACKEND": "melanoma_portal.storage.EncryptedFileSystemStorage"}
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    encryption = env.get("AWS_S3_SERVER_SIDE_ENCRYPTION", "AES256")
    object_parameters = {"ServerSideEncryption": encryption}
    if env.get("AWS_S3_SSE_KMS_KEY_ID"):
        object_parameters["SSEKMSKeyId"] = env["AWS_S3_SSE_KMS_KEY_ID"]
    return {
        "BACKEND": "melanoma_portal.storage_s3."
        + ("EncryptedS3Storage" if encrypted else "PrivateS3Storage"),
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": env.get("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env.get("AWS_S3_REGION_NAME") or None,
            "addressing_style": env.get("AWS_S3_ADDRESSING_STYLE") or None,
            # Several portals (staging, production) may share one bucket under their own prefix.
            "location": env.get("AWS_S3_KEY_PREFIX", ""),
            "default_acl": "private",
            # url() refuses anyway (storage_s3); short-lived signatures if that ever changed.
            "querystring_auth": True,
            "querystring_expire": 60,
            "file_overwrite": False,
            # Server-side encryption at rest for every object the portal writes.
            "object_parameters": object_parameters,
        },
    }


STORAGES = {
    "default": default_storage_from_env(),
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage",
        # Public assets, served by whatever web server reads STATIC_ROOT: not under the umask.
        "OPTIONS": {"file_permissions_mode": 0o644, "directory_permissions_mode": 0o755},
    },
}
# Originals and heatmaps encrypted at rest (the disk's, or the bucket's) when a key is set.
IMAGE_ENCRYPTION_KEY = os.environ.get("IMAGE_ENCRYPTION_KEY", "")

# Celery: the filesystem transport runs a real worker with no server; set the URLs for Redis.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_RESULT_BACKEND = os.environ.get(
    "CELERY_RESULT_BACKEND",
    "redis" in CELERY_BROKER_URL and CELERY_BROKER_URL or f"file://{VAR_DIR / 'celery-results'}",
)
CELERY_BROKER_FOLDER = VAR_DIR / "celery-broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_FOLDER),
        "data_folder_out": str(CELERY_BROKER_FOLDER),
        "processed_folder": str(VAR_DIR / "celery-processed"),
        "control_folder": str(VAR_DIR / "celery-control"),
        "store_processed": False,
        # kombu polls the folder once a second by default: a second of pure waiting per upload.
        "polling_interval": float(os.environ.get("CELERY_FILESYSTEM_POLL_S", "0.2")),
    }
    # kombu's filesystem transport fails on a missing folder; a fresh clone has none yet.
    for _folder in (
        CELERY_BROKER_FOLDER,
        VAR_DIR / "celery-processed",
        VAR_DIR / "celery-control",
        VAR_DIR / "celery-results",
    ):
        _folder.mkdir(parents=True, exist_ok=True)
else:
    # A task unacknowledged this long is given to another worker: longer than any task runs.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A fault test may shorten it to see redelivery quickly (tests/security/).
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT_S", "600"))
    }
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        # kombu looks for such messages every 10 s but scans only on every 10th look by
        # default: a dead worker's analysis waited up to 100 s past the timeout. Every look.
        CELERY_BROKER_TRANSPORT_OPTIONS["unacked_restore_throttle"] = 1
# No task's return value is read (the database holds every outcome); storing none also means
# sending a task never waits on the result store.
CELERY_TASK_IGNORE_RESULT = True
# A broker that is down costs an upload about two seconds, not twenty: the analysis stays
# queued in the database and the beat sweep sends it once the broker is back.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# An analysis's limits: the soft one lets it record why it stopped; at the hard one the pool
# kills it. The stale sweep treats an analysis still `running` after the hard limit as lost.
ANALYSIS_SOFT_TIME_LIMIT_S = int(os.environ.get("ANALYSIS_SOFT_TIME_LIMIT_S", "120"))
ANALYSIS_TIME_LIMIT_S = int(os.environ.get("ANALYSIS_TIME_LIMIT_S", "180"))
# A worker's task runs its own analysis together with up to this many minus one others waiting
# in the queue, as one batch through the network (diagnosis.services.batch); 1 turns batching
# off. Nothing waits for a batch to fill: a lone upload runs at once, alone. The analysis time
# limits above bound the whole batch, so keep a batch's worst case well inside them (16 images
# take a few seconds on one core; bench/batch_worker.py measures it).
ANALYSIS_BATCH_SIZE = int(os.environ.get("ANALYSIS_BATCH_SIZE", "16"))
# An analysis interrupted this many times (worker killed, hard time limit) is failed, not re-run.
ANALYSIS_MAX_ATTEMPTS = int(os.environ.get("ANALYSIS_MAX_ATTEMPTS", "3"))
# A queued analysis whose message may have been lost (a broker restart) is re-sent after this.
REQUEUE_QUEUED_AFTER_S = int(os.environ.get("REQUEUE_QUEUED_AFTER_S", "900"))
REQUEUE_STALE_EVERY_S = float(os.environ.get("REQUEUE_STALE_EVERY_S", "60"))
# Queues per kind of work, each with its own workers and concurrency (docs/deploy.md): the
# classifier's analyses; reports and exports; housekeeping (the beat schedule's tasks, and any
# task not routed here). bin/worker consumes all three unless WORKER_QUEUES names some.
CELERY_QUEUE_INFERENCE = "inference"
CELERY_QUEUE_REPORTS = "reports"
CELERY_QUEUE_HOUSEKEEPING = "housekeeping"
PORTAL_QUEUES = [CELERY_QUEUE_INFERENCE, CELERY_QUEUE_REPORTS, CELERY_QUEUE_HOUSEKEEPING]
CELERY_TASK_DEFAULT_QUEUE = CELERY_QUEUE_HOUSEKEEPING
CELERY_TASK_ROUTES = {
    "diagnosis.tasks.analyse_image": {"queue": CELERY_QUEUE_INFERENCE},
    # Local validation of a model version reads the model files: an inference host's work.
    "diagnosis.tasks.evaluate_model_version": {"queue": CELERY_QUEUE_INFERENCE},
    "reports.tasks.*": {"queue": CELERY_QUEUE_REPORTS},
    "patients.tasks.*": {"queue": CELERY_QUEUE_REPORTS},
}
# celery beat (bin/beat, its own process): re-send analyses whose message was lost (a broker
# restart, a whole worker killed on the filesystem broker), purge expired originals.
CELERY_BEAT_SCHEDULE = {
    # Delete original images past their clinic's retention period (diagnosis.tasks).
    "purge-expired-originals": {
        "task": "diagnosis.tasks.purge_expired_originals",
        "schedule": float(os.environ.get("RETENTION_PURGE_EVERY_S", str(6 * 3600))),
    },
    "requeue-stale-analyses": {
        "task": "diagnosis.tasks.requeue_stale_analyses",
        "schedule": REQUEUE_STALE_EVERY_S,
    },
    # Each clinic's week of results against the served model's validation figures.
    "watch-drift": {
        "task": "diagnosis.tasks.watch_drift",
        "schedule": float(os.environ.get("DRIFT_WATCH_EVERY_S", str(7 * 24 * 3600))),
    },
}

# How often the dashboard's tiles and live queue refresh themselves, in seconds.
DASHBOARD_REFRESH_S = float(os.environ.get("DASHBOARD_REFRESH_S", "10"))

# The classifier the worker serves: ml/models/<version>, named by ml/models/CURRENT.
ML_MODELS_ROOT = Path(os.environ.get("ML_MODELS_ROOT", BASE_DIR / "ml" / "models"))
ML_TORCH_THREADS = int(os.environ.get("ML_TORCH_THREADS", "1"))
# Which runtime serves it: "auto" times the card's servable runtimes for about a second when a
# worker process starts and serves the fastest (ml.runtime_choice); a name (torch,
# torch-compile, torch-int8, onnx-fp32, onnx-int8) forces that one, if the card marks it
# servable. A worker serving an ONNX runtime never imports torch.
ML_RUNTIME = os.environ.get("ML_RUNTIME", "auto").strip() or "auto"
# The model registry (diagnosis.models.ModelVersion) names the served version once it has an
# active one; the promotion gate measures on the clinic's confirmed cases once they hold this
# many melanomas, and on the versions' shipped validation figures until then.
MODEL_GATE_MIN_MELANOMAS = int(os.environ.get("MODEL_GATE_MIN_MELANOMAS", "30"))

# Upload limits (clinical dermoscopes produce a few MB; anything beyond is an error or attack).
UPLOAD_MAX_BYTES = int(os.environ.get("UPLOAD_MAX_BYTES", str(20 * 1024 * 1024)))
UPLOAD_MAX_PIXELS = int(os.environ.get("UPLOAD_MAX_PIXELS", str(50_000_000)))
# The worker analyses a downscaled working copy of at most this many pixels (the original is
# kept as uploaded): the network sees 192 pixels, and a 7000 x 7000 upload cost 19 s of worker
# time at full size (diagnosis.services.image.image_for_analysis, ml.imaging.working_copy).
ANALYSIS_MAX_PIXELS = int(os.environ.get("ANALYSIS_MAX_PIXELS", str(2048 * 2048)))
# Uploads one clinic may make in any hour, pages and API together; beyond it they get a 429
# that says when uploads resume, so one user cannot starve every clinic's shared workers.
UPLOAD_QUOTA_PER_CLINIC_HOUR = int(os.environ.get("UPLOAD_QUOTA_PER_CLINIC_HOUR", "200"))
# A status request may wait for the analysis to change (`?wait=`, long polling) so a result is
# shown within ~0.1 s of being stored, with one request per change instead of one every few
# seconds. Each waiting request holds a web thread: a process lets at most STATUS_WAIT_SLOTS
# wait at once (gunicorn's threads less two, deploy/gunicorn.conf.py), the rest are answered at
# once and their clients poll after a pause. Bounded well under nginx's 65 s proxy timeout.
STATUS_WAIT_MAX_S = float(os.environ.get("STATUS_WAIT_MAX_S", "25"))
STATUS_WAIT_EVERY_S = float(os.environ.get("STATUS_WAIT_EVERY_S", "0.1"))
STATUS_WAIT_SLOTS = int(
    os.environ.get("STATUS_WAIT_SLOTS") or max(int(os.environ.get("GUNICORN_THREADS", "10")) - 2, 0)
)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# The REST API (/api/v1/): tokens a clinic admin issues for mobile and EHR clients, the session
# for the browser; JSON errors with a clear message (melanoma_portal.api_errors).
# Tokens are django-rest-knox's, stored as SHA-512 digests (accounts.ApiToken), sent as
# "Authorization: Token mp_...". Every token expires: the admin chooses within the maximum.
KNOX_TOKEN_MODEL = "accounts.ApiToken"  # noqa: S105 - a model name, not a secret
# knox's own migrations create its default token table even when the model is swapped out, and
# that table's foreign key to users makes the test runner's flush fail; the portal needs none.
MIGRATION_MODULES = {"knox": None}
API_TOKEN_DEFAULT_DAYS = int(os.environ.get("API_TOKEN_DEFAULT_DAYS", "90"))
API_TOKEN_MAX_DAYS = int(os.environ.get("API_TOKEN_MAX_DAYS", "365"))
REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Token",
    # A recognisable prefix: secret scanners and people can tell a portal token when they see one.
    "TOKEN_PREFIX": "mp_",
    "TOKEN_TTL": timedelta(days=API_TOKEN_DEFAULT_DAYS),
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "melanoma_portal.api_errors.api_exception_handler",
    # Per user (anonymous callers by their trusted address): one phone stuck in a retry loop
    # cannot starve a clinic; refused credentials count at the anonymous rate too. Uploads and
    # status reads each have their own budget and count against nothing else, so an
    # integration polling 200 analyses cannot use up its uploads (issue 15: 115 of a 200-upload
    # burst were refused when both shared `user`): `upload` fits a backlog sent as fast as one
    # web host takes it (~4/s), `status` is generous because a status read is one row by key.
    "DEFAULT_THROTTLE_CLASSES": [
        "melanoma_portal.throttling.UserRateThrottle",
        "melanoma_portal.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": os.environ.get("API_THROTTLE_USER", "600/minute"),
        "anon": os.environ.get("API_THROTTLE_ANON", "30/minute"),
        "upload": os.environ.get("API_THROTTLE_UPLOAD", "300/minute"),
        "status": os.environ.get("API_THROTTLE_STATUS", "3000/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Melanoma Portal API",
    "DESCRIPTION": (
        "Patients, lesions, dermoscopic image uploads, AI analyses, reviews, referrals, reports "
        "and FHIR R4 export for mobile and EHR clients. Authenticate with "
        "`Authorization: Token <key>` (a clinic admin issues keys under /clinic/api-tokens/, "
        "each valid for the days the admin chooses; it is shown once and stored only hashed). "
        "Accounts whose role requires two-factor authentication get a token only once they "
        "have set it up. Repeated requests without valid credentials are answered 429 like any "
        "other excess. AI-assisted assessment, not a diagnosis. Consult a dermatologist."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Served from this server (drf-spectacular-sidecar): the docs page loads nothing from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Analyses and referrals both have a "status": name each set of choices after its model.
    "ENUM_NAME_OVERRIDES": {
        "AnalysisStatusEnum": "diagnosis.models.analysis.AnalysisStatus",
        "ReferralStatusEnum": "diagnosis.models.referral.ReferralStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "melanoma_portal.api_errors.document_error_responses",
    ],
}
# Browser apps on other origins that may call the API (a comma-separated list of origins).
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_URLS_REGEX = r"^/api/.*$"

# Prometheus scrapes /metrics with `Authorization: Bearer <METRICS_TOKEN>`; unset, no /metrics.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

# LOG_FORMAT=json: one JSON object a line (production's default); text for a terminal. Both
# carry the request id, in the web process and in the tasks it queued (melanoma_portal.logs).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "melanoma_portal.logs.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "melanoma_portal.logs.JsonFormatter"},
        "text": {"format": "%(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": "json" if LOG_FORMAT == "json" else "text",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
# In JSON mode a worker logs through the same handler, not Celery's own text format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"

# --- Hospital sign-in (OpenID Connect) and JWTs for API clients (issue 18) -------------------
# Each clinic may sign its people in with its hospital's identity provider through allauth's
# openid_connect provider; the apps are built per request from accounts.ClinicSignOn
# (accounts.sso.ClinicSocialAccountAdapter.list_apps), so a clinic admin configures theirs in
# the portal and its client secret is stored encrypted, never in allauth's plain-text table.
INSTALLED_APPS += [
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
]
SOCIALACCOUNT_ADAPTER = "accounts.sso.ClinicSocialAccountAdapter"
# No sign-up through a provider (accounts.sso decides who may enter), no tokens kept, no
# look-up of accounts by address outside the provider's clinic.
SOCIALACCOUNT_AUTO_SIGNUP = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_STORE_TOKENS = False
# Seconds the portal waits for the identity provider before saying it cannot be reached.
SOCIALACCOUNT_REQUESTS_TIMEOUT = int(os.environ.get("OIDC_TIMEOUT_S", "10"))
# Fernet keys (comma separated, newest first) that encrypt clinics' client secrets; without
# them a key is derived from DJANGO_SECRET_KEY (and its fallbacks), so rotating that key
# means entering the secrets again. A secret in PORTAL_OIDC_SECRET_CLINIC_<clinic id> wins
# over a stored one and is never stored.
OIDC_SECRET_KEYS = os.environ.get("OIDC_SECRET_KEYS", "")
# How far the provider's clock may differ from ours before a sign-in is refused as skewed.
OIDC_MAX_CLOCK_SKEW_S = int(os.environ.get("OIDC_MAX_CLOCK_SKEW_S", "120"))

# API clients that act for a person (the mobile app) sign in with e-mail, password and, where
# the account has one, an authenticator code, and get a short-lived access token and a refresh
# token (djangorestframework-simplejwt). Each refresh rotates the refresh token and blacklists
# the old one; presenting a rotated one again revokes the whole sign-in (accounts.services.
# jwt_tokens). Knox tokens (Token mp_...) stay for server-to-server integrations.
JWT_ACCESS_MINUTES = int(os.environ.get("JWT_ACCESS_MINUTES", "10"))
JWT_REFRESH_DAYS = int(os.environ.get("JWT_REFRESH_DAYS", "7"))
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=JWT_ACCESS_MINUTES),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=JWT_REFRESH_DAYS),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": os.environ.get("JWT_SIGNING_KEY") or SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"].insert(
    1, "accounts.authentication.PortalJWTAuthentication"
)
SPECTACULAR_SETTINGS["DESCRIPTION"] += (
    " Apps that act for a person (the mobile app) may instead sign in at /api/v1/auth/token/ "
    "with e-mail, password and an authenticator code and send `Authorization: Bearer "
    "<access>`; access tokens last minutes, refresh tokens days, each refresh rotates the "
    "refresh token, and presenting a used one again ends that sign-in."
)
