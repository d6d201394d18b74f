"""Settings for the DataOps control plane.

Everything that differs between the embedded default (SQLite, Celery eager, file email, local backups, the
local Looker emulator) and production comes from environment variables, read once through ``environ.Env``.
App code reads ``django.conf.settings``, never ``os.environ``.
"""

from __future__ import annotations

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("DATAOPS_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
if env.bool("DATAOPS_READ_DOT_ENV", default=False):
    environ.Env.read_env(BASE_DIR / ".env")

# --- core -------------------------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
# The embedded default has a fixed key so `make demo` works out of the box; production must set its own.
EMBEDDED = not env.str("DATABASE_URL", default="")
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="embedded-default-insecure-key" if EMBEDDED else environ.Env.NOTSET)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("DATAOPS_SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "accounts.apps.DataOpsAdminConfig",  # django.contrib.admin with the audited own-password change
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "audit",
    "accounts",
    "orchestration",
    "cleanup",
    "quality",
    "sales",
    "sheetsync",
    "monitoring",
    "approvals",
    "security",  # issue 12: classification, clearance, masking, encryption at rest, access audit
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "monitoring.middleware.MonitoringMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "dataops_site.urls"
WSGI_APPLICATION = "dataops_site.wsgi.application"
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

# --- database ---------------------------------------------------------------------------------------------
# DATABASE_URL=postgres://user:pass@host:5432/name uses psycopg 3; unset means the embedded SQLite file.
if EMBEDDED:
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded default keeps its SQLite file, mail and backups here
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'dataops.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for a writer instead of failing at once: the web server, the worker and a CLI job share the file.
    # IMMEDIATE takes the write lock when a transaction starts, so read-then-write transactions (the audit
    # chain head, job claims) serialise instead of failing with "database is locked" half-way.
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=20, transaction_mode="IMMEDIATE")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env.str("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "static"))
# WhiteNoise serves the admin's static files from the app itself; without collectstatic it finds them in place.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
if EMBEDDED:
    Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
LOGIN_URL = "admin:login"

# --- storage: backups -------------------------------------------------------------------------------------
# BACKUP_STORAGE_URL=file:///path or gs://bucket/prefix (django-storages' GCS backend).
BACKUP_STORAGE_URL = env.str("BACKUP_STORAGE_URL", default=f"file://{VAR_DIR / 'backups'}")


def _backup_storage(url: str) -> dict:
    if url.startswith("file://"):
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": url.removeprefix("file://"), "base_url": None},
        }
    if url.startswith("gs://"):
        bucket, _, prefix = url.removeprefix("gs://").partition("/")
        return {
            "BACKEND": "storages.backends.gcloud.GoogleCloudStorage",
            "OPTIONS": {"bucket_name": bucket, "location": prefix.strip("/"), "file_overwrite": True},
        }
    raise environ.ImproperlyConfigured(f"BACKUP_STORAGE_URL must start with file:// or gs://, got {url!r}")


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": VAR_DIR / "media"}},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "backups": _backup_storage(BACKUP_STORAGE_URL),
}
# Audit anchors go to the backup store unless AUDIT_ANCHOR_STORAGE_URL names their own (file:// or gs://): in
# production a bucket with a locked retention policy, so no one can delete or overwrite an anchor (README).
AUDIT_ANCHOR_STORAGE_URL = env.str("AUDIT_ANCHOR_STORAGE_URL", default="")
if AUDIT_ANCHOR_STORAGE_URL:
    STORAGES["audit_anchors"] = _backup_storage(AUDIT_ANCHOR_STORAGE_URL)

# --- email ------------------------------------------------------------------------------------------------
# EMAIL_URL=smtp+tls://user:pass@host:587; the embedded default writes each message to var/mail/.
vars().update(env.email_url("EMAIL_URL", default=f"filemail://{VAR_DIR / 'mail'}"))
if EMAIL_BACKEND.endswith("filebased.EmailBackend"):  # noqa: F821 - set by the update above
    # django-environ drops the leading slash of filemail:///abs/path; put it back.
    EMAIL_FILE_PATH = "/" + EMAIL_FILE_PATH.lstrip("/")  # noqa: F821
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="dataops@localhost")

# --- celery -----------------------------------------------------------------------------------------------
# No broker configured means eager: tasks run in-process when queued (after the transaction commits).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://"
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="dataops")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- REST API ---------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ScopedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {"TITLE": "DataOps control plane API", "VERSION": "1.0.0"}

# --- Looker -----------------------------------------------------------------------------------------------
# The SDK's own variable names. Unset LOOKERSDK_BASE_URL means: start and use the local emulator.
LOOKER_BASE_URL = env.str("LOOKERSDK_BASE_URL", default="")
LOOKER_CLIENT_ID = env.str("LOOKERSDK_CLIENT_ID", default="")
LOOKER_CLIENT_SECRET = env.str("LOOKERSDK_CLIENT_SECRET", default="")
LOOKER_VERIFY_SSL = env.bool("LOOKERSDK_VERIFY_SSL", default=True)
LOOKER_TIMEOUT = env.float("LOOKERSDK_TIMEOUT", default=30.0)
LOOKER_MAX_ATTEMPTS = env.int("LOOKER_MAX_ATTEMPTS", default=5)
LOOKER_BACKOFF_BASE = env.float("LOOKER_BACKOFF_BASE", default=0.5)  # seconds; doubles per attempt, with jitter
LOOKER_BACKOFF_MAX = env.float("LOOKER_BACKOFF_MAX", default=30.0)
LOOKER_EMULATOR_PORT = env.int("LOOKER_EMULATOR_PORT", default=9101)
LOOKER_EMULATOR_FIXTURE = env.str("LOOKER_EMULATOR_FIXTURE", default=str(VAR_DIR / "looker_fixture.json"))
LOOKER_EMULATOR_STATE = env.str("LOOKER_EMULATOR_STATE", default=str(VAR_DIR / "looker_state.json"))
LOOKER_EMULATOR_DASHBOARDS = env.int("LOOKER_EMULATOR_DASHBOARDS", default=300)

# --- Airflow ----------------------------------------------------------------------------------------------
# With AIRFLOW_API_URL set (the api-server's base URL, e.g. http://127.0.0.1:8080) every trigger creates a JobRun
# and triggers the job's DAG with dag_run_id "dataops__<JobRun id>"; unset, jobs run through Celery.
# Authenticate with AIRFLOW_TOKEN (a ready JWT) or AIRFLOW_USERNAME/AIRFLOW_PASSWORD (exchanged at /auth/token).
AIRFLOW_API_URL = env.str("AIRFLOW_API_URL", default="")
AIRFLOW_USERNAME = env.str("AIRFLOW_USERNAME", default="admin")
AIRFLOW_PASSWORD = env.str("AIRFLOW_PASSWORD", default="")
AIRFLOW_TOKEN = env.str("AIRFLOW_TOKEN", default="")
AIRFLOW_TIMEOUT = env.float("AIRFLOW_TIMEOUT", default=10.0)  # seconds per API call
AIRFLOW_TOKEN_TTL_S = env.int("AIRFLOW_TOKEN_TTL_S", default=12 * 3600)  # renew cached tokens after this
# The UI link base for task logs when browsers reach Airflow elsewhere than the API URL.
AIRFLOW_UI_URL = env.str("AIRFLOW_UI_URL", default="") or AIRFLOW_API_URL
# job name -> DAG id; a job missing here runs through Celery even with Airflow configured.
AIRFLOW_DAGS = {
    "looker_cleanup": "looker_cleanup",
    "sales_report": "sales_report",
    "sheets_sync": "sheets_sync",
    "audit_anchor": "audit_anchor",
    "monitoring_weekly_report": "monitoring_weekly_report",
    "approvals_sweep": "approvals_sweep",
}
# The periodic Celery task (beat) that refreshes JobRuns from their DAG runs, and how far back it looks.
AIRFLOW_SYNC_INTERVAL_S = env.int("AIRFLOW_SYNC_INTERVAL_S", default=30)
AIRFLOW_SYNC_MAX_AGE_H = env.int("AIRFLOW_SYNC_MAX_AGE_H", default=48)
# --- approvals (approvals/) ----------------------------------------------------------------------------
# A request nobody decided within this many hours expires: it never runs and its requester is told.
APPROVALS_EXPIRY_HOURS = env.float("APPROVALS_EXPIRY_HOURS", default=72)
# The sweeper (Celery beat every APPROVALS_SWEEP_INTERVAL_S, or `manage.py approvals_sweep`) runs an approved
# action still not started this long after its approval, and takes over one "running" for APPROVALS_STUCK_AFTER_S.
APPROVALS_SWEEP_INTERVAL_S = env.int("APPROVALS_SWEEP_INTERVAL_S", default=60)
APPROVALS_SWEEP_GRACE_S = env.int("APPROVALS_SWEEP_GRACE_S", default=120)
APPROVALS_STUCK_AFTER_S = env.int("APPROVALS_STUCK_AFTER_S", default=1800)
# The Django user a scheduled run (no person behind it) is attributed to: the four-eyes rule applies to them.
DATAOPS_SCHEDULE_PRINCIPAL = env.str("DATAOPS_SCHEDULE_PRINCIPAL", default="")
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "approvals-sweep": {"task": "approvals.sweep", "schedule": float(APPROVALS_SWEEP_INTERVAL_S)},
}
if AIRFLOW_API_URL:
    CELERY_BEAT_SCHEDULE["airflow-sync"] = {
        "task": "orchestration.airflow_sync",
        "schedule": float(AIRFLOW_SYNC_INTERVAL_S),
    }
# DAG side (read by dags/dataops_jobs.py in Airflow's processes, documented here for one place to look):
# DATAOPS_PYTHON (this project's python), DATAOPS_PROJECT_DIR (where manage.py is), DATAOPS_ENV_FILE (optional
# file of KEY=VALUE lines sourced before each task: DATABASE_URL, DJANGO_SECRET_KEY, ...), DATAOPS_RETRIES,
# DATAOPS_RETRY_DELAY_S and DATAOPS_MAX_RETRY_DELAY_S (exponential backoff between tries).

# --- Google APIs ------------------------------------------------------------------------------------------
GOOGLE_CLOUD_PROJECT = env.str("GOOGLE_CLOUD_PROJECT", default="dataops-local")
GOOGLE_APPLICATION_CREDENTIALS = env.str("GOOGLE_APPLICATION_CREDENTIALS", default="")
# Sheets has no standard emulator variable: SHEETS_API_ENDPOINT (e.g. http://127.0.0.1:9103) sends Sheets v4 and
# Drive v3 calls to that host instead of Google's.
SHEETS_API_ENDPOINT = env.str("SHEETS_API_ENDPOINT", default="")
SHEETS_RATE_LIMIT_PER_MINUTE = env.int("SHEETS_RATE_LIMIT_PER_MINUTE", default=60)  # per user, Google's default
SHEETS_TIMEOUT = env.float("SHEETS_TIMEOUT", default=30.0)
SHEETS_MAX_ATTEMPTS = env.int("SHEETS_MAX_ATTEMPTS", default=5)
SHEETS_BACKOFF_BASE = env.float("SHEETS_BACKOFF_BASE", default=0.5)
SHEETS_BACKOFF_MAX = env.float("SHEETS_BACKOFF_MAX", default=30.0)

# BigQuery: the client's own BIGQUERY_EMULATOR_HOST aims it at an emulator. The embedded default starts the
# local one (sandbox/bigquery) on BIGQUERY_EMULATOR_PORT, seeded from var/bigquery (make demo generates it).
BIGQUERY_LOCATION = env.str("BIGQUERY_LOCATION", default="US")
BIGQUERY_EMULATOR_PORT = env.int("BIGQUERY_EMULATOR_PORT", default=9102)
BIGQUERY_EMULATOR_HOST = env.str("BIGQUERY_EMULATOR_HOST", default="")
BIGQUERY_EMULATOR_AUTOSTART = EMBEDDED and not BIGQUERY_EMULATOR_HOST and not GOOGLE_APPLICATION_CREDENTIALS
if BIGQUERY_EMULATOR_AUTOSTART:
    BIGQUERY_EMULATOR_HOST = f"http://127.0.0.1:{BIGQUERY_EMULATOR_PORT}"
BIGQUERY_EMULATOR_DATA_DIR = env.str("BIGQUERY_EMULATOR_DATA_DIR", default=str(VAR_DIR / "bigquery"))
SHEETS_EMULATOR_PORT = env.int("SHEETS_EMULATOR_PORT", default=9103)
SHEETS_EMULATOR_AUTOSTART = EMBEDDED and not SHEETS_API_ENDPOINT and not GOOGLE_APPLICATION_CREDENTIALS
if SHEETS_EMULATOR_AUTOSTART:
    SHEETS_API_ENDPOINT = f"http://127.0.0.1:{SHEETS_EMULATOR_PORT}"
SHEETS_EMULATOR_STATE = env.str("SHEETS_EMULATOR_STATE", default=str(VAR_DIR / "sheets_state.json"))

# --- sales job --------------------------------------------------------------------------------------------
SALES_SHEET_ID = env.str("SALES_SHEET_ID", default="sales-dashboard" if EMBEDDED else "")
SALES_MAX_BYTES = env.int("SALES_MAX_BYTES", default=10 * 2**30)  # the cost guard: refuse above this
# Between this and SALES_MAX_BYTES a query runs only once another Analyst approves it.
SALES_APPROVAL_BYTES = env.int("SALES_APPROVAL_BYTES", default=2**30)
SALES_PRICE_PER_TIB_USD = env.float("SALES_PRICE_PER_TIB_USD", default=6.25)  # on-demand list price
QUALITY_QUARANTINE_CAP = env.int("QUALITY_QUARANTINE_CAP", default=10_000)  # quarantined rows kept per dataset and run

# --- sheets sync job -------------------------------------------------------------------------------------
# Service accounts (one per team) that targets can read and write as: "finance=/secrets/finance-sa.json,ops=..."
# (a bare name, e.g. "ops", has no key file: Application Default Credentials, or another user of the emulator).
# Each has its own per-user quota; all share the project's. A target's blank principal is the default credentials.
SHEETS_PRINCIPALS: dict[str, str] = {"": ""}
for _entry in env.list("SHEETS_PRINCIPALS", default=[]):
    _name, _, _path = _entry.partition("=")
    if _name.strip():
        SHEETS_PRINCIPALS[_name.strip()] = _path.strip()
# One changes feed for every target instead of one per principal: the principal whose Drive feed sees every synced
# spreadsheet (e.g. a service account that is a viewer of their shared drive), or "default" for the default
# credentials. Unset: each principal reads its own feed (a quiet cycle then costs one request per principal).
_SHEETS_FEED = env.str("SHEETS_SYNC_FEED_PRINCIPAL", default="").strip()
SHEETS_SYNC_FEED_PRINCIPAL: str | None = ("" if _SHEETS_FEED == "default" else _SHEETS_FEED) if _SHEETS_FEED else None
# How many principals' spreadsheets are worked on at once (each principal one at a time, in fair turns).
SHEETS_SYNC_CONCURRENCY = env.int("SHEETS_SYNC_CONCURRENCY", default=8)
# A write planned without reading the sheet (from the stored copy) first checks the Drive changes feed when the
# last check is older than this: one feed call verifies every spreadsheet of a principal.
SHEETS_SYNC_RECHECK_AFTER_S = env.float("SHEETS_SYNC_RECHECK_AFTER_S", default=2.0)
# After this many consecutive failed cycles a target's incident opens (monitoring's escalation ladder does the telling).
SHEETS_SYNC_FAILURE_ESCALATION = env.int("SHEETS_SYNC_FAILURE_ESCALATION", default=3)
# Google's per-project Sheets quota, shared by every Sheets client in this process (the per-user one is
# SHEETS_RATE_LIMIT_PER_MINUTE); 0 disables this budget.
SHEETS_SYNC_PROJECT_RATE_LIMIT_PER_MINUTE = env.int("SHEETS_SYNC_PROJECT_RATE_LIMIT_PER_MINUTE", default=300)
# When the client has used up its own retries on 429s, the sync pauses (doubling) and retries the same step.
SHEETS_SYNC_RATE_LIMIT_ROUNDS = env.int("SHEETS_SYNC_RATE_LIMIT_ROUNDS", default=4)
SHEETS_SYNC_RATE_LIMIT_PAUSE_S = env.float("SHEETS_SYNC_RATE_LIMIT_PAUSE_S", default=15.0)
# A sheet whose Drive version moves between our read and our write is re-read and re-diffed at most this often.
SHEETS_SYNC_MAX_REREADS = env.int("SHEETS_SYNC_MAX_REREADS", default=3)
SHEETS_SYNC_MAX_ROWS = env.int("SHEETS_SYNC_MAX_ROWS", default=100_000)  # per source; more fails the target
SHEETS_SYNC_MAX_BYTES = env.int("SHEETS_SYNC_MAX_BYTES", default=2**30)  # BigQuery cost guard per source query
SHEETS_SYNC_SOURCE_TIMEOUT_S = env.int("SHEETS_SYNC_SOURCE_TIMEOUT_S", default=120)  # database sources
# A database source whose result is larger than this (text as it is, other values 8 bytes each) is refused.
SHEETS_SYNC_SOURCE_MAX_BYTES = env.int("SHEETS_SYNC_SOURCE_MAX_BYTES", default=64 * 2**20)
# File sources outside the backup store ("store:<name>") must lie under one of these directories.
SHEETS_SYNC_FILE_ROOTS = env.list("SHEETS_SYNC_FILE_ROOTS", default=[str(VAR_DIR / "sheetsync")])
# Database sources name an alias; its URL (with the password) lives only in the environment variable
# SHEETS_SYNC_DB_<ALIAS>, e.g. SHEETS_SYNC_DB_CRM=postgres://reader:secret@db:5432/crm or sqlite:////data/x.db.
SHEETS_SYNC_DATABASES = {
    name.removeprefix("SHEETS_SYNC_DB_").lower(): url
    for name, url in env.ENVIRON.items()
    if name.startswith("SHEETS_SYNC_DB_") and name != "SHEETS_SYNC_DB_" and url
}

# --- cleanup job ------------------------------------------------------------------------------------------
CLEANUP_INACTIVE_DAYS = env.int("CLEANUP_INACTIVE_DAYS", default=90)
CLEANUP_MAX_DELETIONS = env.int("CLEANUP_MAX_DELETIONS", default=100)
# A real run whose plan soft-deletes more dashboards than this waits for a second Content Admin's approval.
CLEANUP_APPROVAL_THRESHOLD = env.int("CLEANUP_APPROVAL_THRESHOLD", default=25)
# Jobs that delete things: pausing, unpausing or triggering their DAGs from the admin needs a second Platform Admin.
DESTRUCTIVE_JOBS = env.list("DESTRUCTIVE_JOBS", default=["looker_cleanup"])
CLEANUP_CONCURRENCY = env.int("CLEANUP_CONCURRENCY", default=4)
CLEANUP_PAGE_SIZE = env.int("CLEANUP_PAGE_SIZE", default=500)
# Dashboard owners are looked up after the scan, only the ones seen: by id up to two requests of this many ids
# (short URLs), else by listing users in pages of CLEANUP_USER_PAGE_SIZE until every owner is found.
CLEANUP_USER_IDS_PER_REQUEST = env.int("CLEANUP_USER_IDS_PER_REQUEST", default=200)
CLEANUP_USER_PAGE_SIZE = env.int("CLEANUP_USER_PAGE_SIZE", default=5000)
# Folder ids or names whose dashboards are never touched (also managed in the admin).
CLEANUP_PROTECTED_FOLDERS = env.list("CLEANUP_PROTECTED_FOLDERS", default=[])

# --- audit ------------------------------------------------------------------------------------------------
# The key that signs every audit event, the chain head and each anchor (HMAC-SHA256). Someone with only database
# access cannot produce a valid signature, so a rewritten, re-hashed or forged event and a head moved back are
# named by audit_verify. Keep it outside the database (secret store); unset, it is derived from DJANGO_SECRET_KEY.
# Rotating it: move the old value to AUDIT_HMAC_OLD_KEYS (comma-separated) so older events still verify.
AUDIT_HMAC_KEY = env.str("AUDIT_HMAC_KEY", default="")
AUDIT_HMAC_OLD_KEYS = env.list("AUDIT_HMAC_OLD_KEYS", default=[])
# A payload is capped at this many bytes of JSON; longer values are cut with a marker (length and SHA-256 kept).
AUDIT_PAYLOAD_MAX_BYTES = env.int("AUDIT_PAYLOAD_MAX_BYTES", default=16 * 1024)
AUDIT_VALUE_MAX_CHARS = env.int("AUDIT_VALUE_MAX_CHARS", default=1000)  # per string value in a payload
AUDIT_VALUE_MAX_ITEMS = env.int("AUDIT_VALUE_MAX_ITEMS", default=100)  # per list or object in a payload
# How long the audit list's chain banner reuses a verification (seconds); "Verify now" always runs a fresh one.
AUDIT_BANNER_CACHE_S = env.int("AUDIT_BANNER_CACHE_S", default=60)

# Modules that register jobs in orchestration.registry.
DATAOPS_JOB_MODULES = [
    "cleanup.jobs",
    "sales.jobs",
    "sheetsync.jobs",
    "audit.jobs",
    "monitoring.jobs",
    "approvals.jobs",
]
# A running job that has not reported progress for this long is taken as dead (its process crashed).
JOB_HEARTBEAT_TIMEOUT_S = env.int("JOB_HEARTBEAT_TIMEOUT_S", default=900)

# --- monitoring: metrics, SLAs, incidents, logs ---------------------------------------------------------
# /metrics (Prometheus text format) answers a scraper sending "Authorization: Bearer $MONITORING_METRICS_TOKEN",
# or a logged-in user with monitoring.view_metrics. Unset token: only logged-in users.
MONITORING_METRICS_TOKEN = env.str("MONITORING_METRICS_TOKEN", default="")
# Counters that happen in many processes (requests per external API, process CPU) are shared through
# prometheus_client's multiprocess mode: one directory per host, writable by every process of the project (web,
# Celery workers, run_job started by Airflow), emptied when the host's processes are (re)deployed. The client reads
# the variable from the environment when it is imported, so it is exported here, before any app loads.
PROMETHEUS_MULTIPROC_DIR = env.str(
    "PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "prometheus") if EMBEDDED else ""
)
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
# The monitoring tick (Celery beat or `manage.py monitoring_tick`): retries, escalations, SLA checks, host samples.
MONITORING_TICK_INTERVAL_S = env.int("MONITORING_TICK_INTERVAL_S", default=60)
# Incident notifications: e-mail to each escalation rung, and a POST of Slack-compatible JSON to each URL here.
MONITORING_WEBHOOK_URLS = env.list("MONITORING_WEBHOOK_URLS", default=[])
MONITORING_WEBHOOK_TIMEOUT_S = env.float("MONITORING_WEBHOOK_TIMEOUT_S", default=10.0)
MONITORING_NOTIFY_ATTEMPTS = env.int("MONITORING_NOTIFY_ATTEMPTS", default=5)
# Transient and quota failures: retried this often with exponential backoff (base delays, cap) before escalating.
# Runs that Airflow executes are retried by Airflow itself (its DAGs' DATAOPS_RETRIES, mirrored here).
MONITORING_RETRY_MAX = env.int("MONITORING_RETRY_MAX", default=3)
MONITORING_RETRY_DELAY_S = env.float("MONITORING_RETRY_DELAY_S", default=60.0)
MONITORING_QUOTA_RETRY_DELAY_S = env.float("MONITORING_QUOTA_RETRY_DELAY_S", default=300.0)
MONITORING_RETRY_MAX_DELAY_S = env.float("MONITORING_RETRY_MAX_DELAY_S", default=3600.0)
MONITORING_AIRFLOW_TASK_RETRIES = env.int("MONITORING_AIRFLOW_TASK_RETRIES", default=3)
# Quotas shown against usage: Looker API calls per month (Standard edition: 1,000 admin calls), Sheets requests per
# minute (0: SHEETS_SYNC_PROJECT_RATE_LIMIT_PER_MINUTE), BigQuery bytes billed per day.
MONITORING_LOOKER_MONTHLY_QUOTA = env.int("MONITORING_LOOKER_MONTHLY_QUOTA", default=1000)
MONITORING_SHEETS_QUOTA_PER_MINUTE = env.int("MONITORING_SHEETS_QUOTA_PER_MINUTE", default=0)
MONITORING_BIGQUERY_DAILY_BYTES_QUOTA = env.int("MONITORING_BIGQUERY_DAILY_BYTES_QUOTA", default=2**40)
MONITORING_RETENTION_DAYS = env.int("MONITORING_RETENTION_DAYS", default=90)  # host samples and per-minute usage
MONITORING_OPERATIONS_REFRESH_S = env.int("MONITORING_OPERATIONS_REFRESH_S", default=30)
CELERY_BEAT_SCHEDULE["monitoring-tick"] = {"task": "monitoring.tick", "schedule": float(MONITORING_TICK_INTERVAL_S)}
if not AIRFLOW_API_URL:  # with Airflow, its monitoring_weekly_report DAG schedules the report
    # A crontab's fields: dataops_site.celery makes the crontab (importing Celery here cost every process 0.3 s).
    CELERY_BEAT_SCHEDULE["monitoring-weekly-report"] = {
        "task": "monitoring.weekly_report",
        "schedule": {"crontab": {"minute": 0, "hour": 6, "day_of_week": "mon"}},
    }
# Celery workers keep Django's logging (the JSON formatter and its context) instead of replacing the root logger.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# DJANGO_LOG_FORMAT=json writes one JSON object per line with run_id, job, actor, request_id, dag_id, dag_run_id.
from monitoring.logs import logging_config  # noqa: E402 - imports nothing of Django's apps

LOGGING = logging_config(
    fmt=env.str("DJANGO_LOG_FORMAT", default="plain"), level=env.str("DJANGO_LOG_LEVEL", default="INFO")
)

# --- data security (security/, issue 12) ------------------------------------------------------------------
# Fernet keys (comma-separated, newest first) that encrypt restricted values at rest (quarantined rows, failing
# samples, backups). Rotate: put a new key first, run `manage.py rotate_encryption_keys`, then drop the old one.
# Unset: derived from DJANGO_SECRET_KEY in the embedded default and under DEBUG (with a warning); required elsewhere.
DATA_ENCRYPTION_KEYS = env.list("DATA_ENCRYPTION_KEYS", default=[])
# How long a reveal of masked values (an admin action with a reason) lasts, in minutes.
SECURITY_REVEAL_MINUTES = env.int("SECURITY_REVEAL_MINUTES", default=15)
# Per-deployment changes to the classification ({"dataset": {"column": "level"}}) and to role clearances.
SECURITY_CLASSIFICATION: dict[str, dict[str, str]] = env.json("SECURITY_CLASSIFICATION", default={})
SECURITY_ROLE_CLEARANCE: dict[str, str] = env.json("SECURITY_ROLE_CLEARANCE", default={})
# Dashboard backups are written encrypted under those keys; off (BACKUP_ENCRYPT=false) relies on the store's own
# encryption alone (GCS encrypts every object at rest; a CMEK bucket adds a key you control).
BACKUP_ENCRYPT = env.bool("BACKUP_ENCRYPT", default=True)
# The retention policy the backup bucket must have (seconds; 0: none declared). `manage.py security_check_storage`
# compares it with the bucket's (gs:// stores) and fails when they differ.
BACKUP_BUCKET_RETENTION_S = env.int("BACKUP_BUCKET_RETENTION_S", default=0)

# --- hardening (issue 12): all from the environment; `check --deploy` is clean with these set for production ---
# Behind a TLS-terminating proxy: SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https (header, value).
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)  # e.g. 31536000 once HTTPS is the only way in
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = env.list("SECURE_REDIRECT_EXEMPT", default=[r"^health/$"])  # the load balancer's probe
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
_PROXY_SSL_HEADER = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _PROXY_SSL_HEADER and len(_PROXY_SSL_HEADER) != 2:
    raise environ.ImproperlyConfigured(
        "SECURE_PROXY_SSL_HEADER must be 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https"
    )
SECURE_PROXY_SSL_HEADER = tuple(_PROXY_SSL_HEADER) if _PROXY_SSL_HEADER else None
# Sessions expire: 8 hours after login by default (seconds), and on browser close when asked.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = env.bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", default=False)
SESSION_COOKIE_HTTPONLY = True
# Content-Security-Policy (django-csp): scripts only from this site, never inline; styles inline allowed (the admin's
# and this project's style attributes). The API docs serve Swagger UI from the sidecar's static files.
MIDDLEWARE.append("csp.middleware.CSPMiddleware")
INSTALLED_APPS += ["csp", "drf_spectacular_sidecar"]
from csp.constants import NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
SPECTACULAR_SETTINGS.update(
    {"SWAGGER_UI_DIST": "SIDECAR", "SWAGGER_UI_FAVICON_HREF": "SIDECAR", "REDOC_DIST": "SIDECAR"}
)
# --- privacy (issue 12): pseudonyms, k-suppression, retention, data-subject requests -------------------------
INSTALLED_APPS += ["privacy"]  # appended here to keep the list above untouched
# The key of every pseudonym (keyed HMAC-SHA256 of e-mails and customer ids in audit payloads, exports and samples).
# Keep it in the secret store, apart from the database. Unset, derived from DJANGO_SECRET_KEY. Rotating it: move the
# old value to PSEUDONYM_OLD_KEYS (comma-separated) so data-subject requests still find records made before.
PSEUDONYM_KEY = env.str("PSEUDONYM_KEY", default="")
PSEUDONYM_OLD_KEYS = env.list("PSEUDONYM_OLD_KEYS", default=[])
# Published sales aggregates: a day and region counted from fewer than this many distinct customers has its figures
# replaced by "suppressed" on the sheet (k-anonymity of small groups). 0 disables it.
SALES_MIN_GROUP_SIZE = env.int("SALES_MIN_GROUP_SIZE", default=5)
# Retention (days) of records that may hold personal data; a daily purge (privacy_retention_purge) applies them.
# Access records are audit events: never deleted (the chain is evidence; their payloads hold no personal data).
RETENTION_QUARANTINE_DAYS = env.int("RETENTION_QUARANTINE_DAYS", default=90)
RETENTION_SAMPLES_DAYS = env.int("RETENTION_SAMPLES_DAYS", default=90)
RETENTION_SYNC_EVENT_DETAILS_DAYS = env.int("RETENTION_SYNC_EVENT_DETAILS_DAYS", default=30)
RETENTION_ACCESS_RECORDS_DAYS = env.int("RETENTION_ACCESS_RECORDS_DAYS", default=365)
DATAOPS_JOB_MODULES += ["privacy.jobs"]
AIRFLOW_DAGS["privacy_retention_purge"] = "privacy_retention_purge"
if not AIRFLOW_API_URL:  # with Airflow, its privacy_retention_purge DAG schedules the purge
    CELERY_BEAT_SCHEDULE["privacy-retention-purge"] = {
        "task": "privacy.retention_purge",
        "schedule": {"crontab": {"minute": 30, "hour": 3}},  # dataops_site.celery makes the crontab
    }
# --- lineage (issue 13): OpenLineage events for job runs, their stages and governance actions ----------------
# Every event is stored in the database (openlineage-python's transport type ``dataops_db``). The library's own
# configuration adds a destination: OPENLINEAGE_URL (+ OPENLINEAGE_ENDPOINT, OPENLINEAGE_API_KEY), or
# OPENLINEAGE_CONFIG / ./openlineage.yml (http, file, console...), or OPENLINEAGE__TRANSPORT__*; events then wait in
# the outbox and are delivered every LINEAGE_DELIVERY_INTERVAL_S (Celery beat) or by `manage.py lineage_deliver`.
INSTALLED_APPS += ["lineage"]
LINEAGE_NAMESPACE = env.str("LINEAGE_NAMESPACE", default="dataops")  # the jobs' OpenLineage namespace
# Airflow's DAG runs (the parent of a run Airflow triggered): default ``airflow://<AIRFLOW_API_URL host>``.
LINEAGE_AIRFLOW_NAMESPACE = env.str("LINEAGE_AIRFLOW_NAMESPACE", default="")
LINEAGE_DELIVERY_INTERVAL_S = env.int("LINEAGE_DELIVERY_INTERVAL_S", default=60)
LINEAGE_DELIVERY_MAX_ATTEMPTS = env.int("LINEAGE_DELIVERY_MAX_ATTEMPTS", default=8)
LINEAGE_DELIVERY_DELAY_S = env.float("LINEAGE_DELIVERY_DELAY_S", default=60.0)  # doubles per failed attempt
LINEAGE_DELIVERY_MAX_DELAY_S = env.float("LINEAGE_DELIVERY_MAX_DELAY_S", default=3600.0)
LINEAGE_DELIVERY_LEASE_S = env.float("LINEAGE_DELIVERY_LEASE_S", default=300.0)  # one worker sends a row at a time
CELERY_BEAT_SCHEDULE["lineage-deliver"] = {"task": "lineage.deliver", "schedule": float(LINEAGE_DELIVERY_INTERVAL_S)}
# --- issue 11: forms and confirmations ----------------------------------------------------------------------
# The e-mail of the account the default Sheets credentials act as: the sync target form tells people to share
# their sheet with it (principals with a key file name their own client_email).
SHEETS_SERVICE_ACCOUNT_EMAIL = env.str("SHEETS_SERVICE_ACCOUNT_EMAIL", default="")
# Where people open Looker (a dashboard page's "Open in Looker"); default: the API's host (LOOKERSDK_BASE_URL).
LOOKER_UI_URL = env.str("LOOKER_UI_URL", default="")
# --- console (issue 11): each role's home, time zones, links out ----------------------------------------------
INSTALLED_APPS += ["console"]
# Each person's zone (console.UserProfile, from the browser's default) is active for their requests.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "console.timezones.TimeZoneMiddleware",
)
FORMAT_MODULE_PATH = ["console.formats"]  # times shown with their zone's name
# LOOKER_UI_URL (above) serves the home's "open in Looker" links too.
CONSOLE_LIVE_REFRESH_S = env.int("CONSOLE_LIVE_REFRESH_S", default=5)  # a live run's page reloads this often
AUDIT_LIST_COUNT_CAP = env.int("AUDIT_LIST_COUNT_CAP", default=1_000)  # filtered audit lists count at most this
# --- REST API v1 (issue 10) --------------------------------------------------------------------------------
# Strict filters and ordering (a bad value is a 400 naming the parameter), errors documented on every operation,
# Swagger UI and Redoc from the project's static files (drf-spectacular-sidecar), the schema kept to /api/v1/.
REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"] = [
    "api.common.StrictFilterBackend",
    "rest_framework.filters.SearchFilter",
    "api.common.StrictOrderingFilter",
]
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "api.schema.AutoSchema"
SPECTACULAR_SETTINGS.update(
    {
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        "REDOC_DIST": "SIDECAR",
        "PREPROCESSING_HOOKS": ["api.schema.only_v1"],
        "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
        "COMPONENT_SPLIT_REQUEST": True,
        "DESCRIPTION": "Everything the admin does, for scripts: authenticate with `Authorization: Token <key>`.",
    }
)
# API tokens (django-rest-knox): hashed at rest, several per user, each with an expiry (days, at most the max).
INSTALLED_APPS += ["knox"]
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [
    "accounts.authentication.ScopedTokenAuthentication",
    "rest_framework.authentication.SessionAuthentication",
]
API_TOKEN_DEFAULT_DAYS = env.int("API_TOKEN_DEFAULT_DAYS", default=90)
API_TOKEN_MAX_DAYS = env.int("API_TOKEN_MAX_DAYS", default=365)
REST_KNOX = {"AUTH_HEADER_PREFIX": "Token", "TOKEN_TTL": None, "AUTO_REFRESH": False}
KNOX_TOKEN_MODEL = "knox.AuthToken"  # noqa: S105 - a model name
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    "JobRunStatusEnum": "orchestration.models.JobRun.Status",
    "ApprovalStatusEnum": "approvals.models.ApprovalRequest.Status",
    "ApprovalExecutionEnum": "approvals.models.ApprovalRequest.Execution",
    "QuarantinedRowStatusEnum": "quality.models.QuarantinedRow.Status",
    "ReviewItemStatusEnum": "quality.models.ReviewItem.Status",
    "QueryRunStatusEnum": "sales.models.QueryRun.Status",
    "SalesReportStatusEnum": "sales.models.SalesReport.Status",
    "SyncOutcomeEnum": "sheetsync.models.SyncOutcome",
}
# Throttles (429 with Retry-After): API writes per user, anonymous API requests per address, API tokens created
# per user. Failed logins: django-axes locks a username+address out after AXES_FAILURE_LIMIT failures for
# AXES_COOLOFF_MINUTES (Platform Admins see and clear lockouts in the admin: Axes -> Access attempts).
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [
    "api.throttles.WriteRateThrottle",
    "rest_framework.throttling.AnonRateThrottle",
]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "writes": env.str("API_THROTTLE_WRITES", default="300/min"),
    "anon": env.str("API_THROTTLE_ANON", default="120/min"),
    "token_create": env.str("API_THROTTLE_TOKEN_CREATE", default="20/hour"),
    "costly_reads": env.str("API_THROTTLE_COSTLY_READS", default="60/min"),
}
INSTALLED_APPS += ["axes"]
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = __import__("datetime").timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] = [
    "drf_spectacular.hooks.postprocess_schema_enums",
    "api.schema.path_ids_not_negative",
    "api.schema.openapi_links",  # links for schemathesis' stateful tests
]
# Issue 10, the API's monitoring and privacy endpoints: their "kind" choice sets, each named in the schema.
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "IncidentKindEnum": "monitoring.constants.IncidentKind",
        "SlaKindEnum": "monitoring.constants.SlaKind",
        "SubjectRequestKindEnum": "privacy.models.SubjectRequest.Kind",
        "IncidentEventKindEnum": "monitoring.constants.EventKind",
        "IncidentStatusEnum": "monitoring.constants.IncidentStatus",
        "LineageOutboxStatusEnum": "lineage.models.LineageOutbox.Status",
    }
)
# Issue 10, monitoring's notifications through /api/v1/ (their "status" is not the other lists' statuses).
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["NotificationStatusEnum"] = "monitoring.models.Notification.Status"
