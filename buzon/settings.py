"""Django settings for Buzón. Every value comes from the environment (see docs/configuration.md)."""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

from buzon.core import config
from buzon.core import queues as task_queues

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = config.data_dir()
TESTING = "pytest" in sys.modules or config.env_bool("BUZON_TESTING")

SECRET_KEY = config.secret_key(DATA_DIR)
FERNET_KEYS = config.fernet_keys(DATA_DIR)
DEBUG = config.env_bool("BUZON_DEBUG")
ALLOWED_HOSTS = config.env_list("BUZON_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = config.env_list("BUZON_CSRF_TRUSTED_ORIGINS")
# The public address of the web UI, which links in mail start with; while it is unset, the address
# `buzon run` serves, or a request's own (buzon/core/public_url.py), and production sites are warned.
BASE_URL_SET = bool(config.env_str("BUZON_BASE_URL").strip())
BASE_URL = (config.env_str("BUZON_BASE_URL").strip() or config.env_str("BUZON_SERVED_URL").strip()
            or "http://localhost:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",  # API tokens stored only as hashes (model: api.ApiToken)
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_tasks",
    "django_tasks_db",
    "buzon.core",
    "buzon.crm",
    "buzon.mailboxes",
    "buzon.sync",
    "buzon.messages",
    "buzon.search",  # full-text search of the mail (FTS5 / PostgreSQL text search)
    "buzon.inbound",
    "buzon.outbound",
    "buzon.workspace",
    "buzon.api",
    "buzon.web",
    # Sign-in protection (see the "Sign-in protection" block below).
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Links made during a request use the address it came to, while BUZON_BASE_URL is unset.
    "buzon.core.public_url.RequestBaseMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Remembers the request so the audit log names who changed a setting (also an API token's user).
    "buzon.mailboxes.audit.AuditMiddleware",
    # Keeps the signed-in session's "last seen" (Agent.online), at most one write a minute per session.
    "buzon.crm.presence.PresenceMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "buzon.web.security.SecondFactorMiddleware",
    # An invited person serves no page or API call until they set their password (buzon.core.invitations).
    "buzon.web.invited.PasswordPendingMiddleware",
    "buzon.web.security.ContentSecurityPolicyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes requires: it turns a locked-out sign-in into the lock-out page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "buzon.urls"
WSGI_APPLICATION = "buzon.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

_default_db = f"sqlite:///{DATA_DIR / 'buzon.sqlite3'}"
# Each web thread and worker slot keeps its connection for BUZON_DB_CONN_MAX_AGE seconds, checked
# before a request reuses it (one that died with a PostgreSQL restart is opened again). Opening one
# costs a few milliseconds on PostgreSQL (a process forked by the server, authentication) and about
# two of CPU on SQLite (its pragmas, Django's SQL functions registered anew): more than a whole API
# send's queries, and, opened at each poll, a tenth of a core for a worker with nothing to do.
DATABASES = {"default": dj_database_url.parse(config.env_str("DATABASE_URL", _default_db),
                                              conn_max_age=config.env_int("BUZON_DB_CONN_MAX_AGE", 300),
                                              conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web, worker and sync processes read while one writes; IMMEDIATE takes the
    # write lock at BEGIN so concurrent writers queue instead of failing, and they queue in turn
    # (buzon.core.backends.sqlite3) rather than each on SQLite's sleeping busy handler.
    DATABASES["default"]["ENGINE"] = "buzon.core.backends.sqlite3"
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # Tests use a database file, as a site does: threads that share an in-memory database (the live
    # server, the sync engine's database thread, the pipeline) lock whole tables and fail at once
    # instead of waiting on busy_timeout. BUZON_TEST_SQLITE_MEMORY=1 keeps it in memory. One file per
    # test process: two test runs at once on one checkout must not share (and wipe) each other's.
    DATABASES["default"]["TEST"] = {} if config.env_bool("BUZON_TEST_SQLITE_MEMORY") else {
        "NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = config.env_str("REDIS_URL")
TASK_BACKEND_NAME = config.env_str("BUZON_TASKS", "db")
# The task queues (buzon.core.queues): inbound, outbound, housekeeping, and "default" for tasks queued
# before they were split; `buzon worker` gives each its own slots (buzon.core.slots).
TASK_QUEUES = list(task_queues.ALL_QUEUES)
_task_backends = {
    "db": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": TASK_QUEUES},
    "rq": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": TASK_QUEUES},
    "immediate": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend", "QUEUES": TASK_QUEUES},
    "dummy": {"BACKEND": "django_tasks.backends.dummy.DummyBackend", "QUEUES": TASK_QUEUES},
}
if TASK_BACKEND_NAME not in _task_backends:
    raise ValueError(f"BUZON_TASKS must be one of {', '.join(_task_backends)}, not {TASK_BACKEND_NAME!r}")
TASKS = {"default": _task_backends[TASK_BACKEND_NAME]}
if TASK_BACKEND_NAME == "rq":
    INSTALLED_APPS.append("django_rq")
    RQ_QUEUES = {name: {"URL": REDIS_URL or "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": 600}
                 for name in TASK_QUEUES}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("es", _("Spanish"))]
TIME_ZONE = config.env_str("BUZON_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = DATA_DIR / "media"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "buzon.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "buzon.api.pagination.KeysetPagination",  # cursor pages, no COUNT
    "PAGE_SIZE": 100,
}
# API tokens (buzon.core.api_tokens): only a SHA-512 digest of each is stored; they do not expire by
# themselves, are revoked by their user (web page, API) and all at once when the password changes.
KNOX_TOKEN_MODEL = "api.ApiToken"
REST_KNOX = {"TOKEN_TTL": None, "AUTH_HEADER_PREFIX": "Token"}
# knox's own migrations create its default table even when the model is swapped for ours; unmigrated,
# its swapped model gets no table at all (an unused table referencing users blocks PostgreSQL's TRUNCATE).
MIGRATION_MODULES = {"knox": None}
SPECTACULAR_SETTINGS = {
    "TITLE": "Buzón API",
    "DESCRIPTION": "Email accounts, incoming and outgoing mail, and the records they feed.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name per shared choice set (incoming_security and smtp_security use the same one).
    "ENUM_NAME_OVERRIDES": {
        "SecurityEnum": "buzon.mailboxes.models.Security",
        "IncomingProtocolEnum": "buzon.mailboxes.models.IncomingProtocol",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": config.env_str("BUZON_LOG_LEVEL", "INFO")},
    "loggers": {"aioimaplib": {"level": "WARNING"}, "mail.log": {"level": "WARNING"}},
}

# Mail behaviour
MAX_INCOMING_ACCOUNTS_PER_STORE = config.env_int("BUZON_MAX_INCOMING_ACCOUNTS_PER_STORE", 10)
SYSTEM_SMTP_URL = config.env_str("BUZON_SYSTEM_SMTP_URL")
TLS_CA_FILE = config.env_str("BUZON_CA_FILE")
PROBE_TIMEOUT_S = float(config.env_str("BUZON_PROBE_TIMEOUT", "10"))
# Connection probe guard (mailboxes.guard): the probe only reaches mail ports unless the admin allows
# more; loopback/private addresses (an office mail server) are allowed unless turned off, for every
# connection (probe, sync, send). Link-local and cloud-metadata addresses are always refused.
PROBE_ALLOWED_PORTS = frozenset({25, 110, 143, 465, 587, 993, 995, 2525}
                                | {int(p) for p in config.env_list("BUZON_PROBE_ALLOWED_PORTS") if p.strip().isdigit()})
PROBE_ALLOW_PRIVATE = config.env_bool("BUZON_PROBE_ALLOW_PRIVATE", True)
PROBE_RATE_PER_MINUTE = config.env_int("BUZON_PROBE_RATE_PER_MINUTE", 20)
# OAuth 2.0 sign-in to Google and Microsoft 365 mailboxes (mailboxes.oauth). OAUTH_PROVIDERS adds or
# overrides providers: {"key": {"name", "authorize_url", "token_url", "scopes", "client_id", "client_secret"}}.
OAUTH_GOOGLE_CLIENT_ID = config.env_str("BUZON_OAUTH_GOOGLE_CLIENT_ID")
OAUTH_GOOGLE_CLIENT_SECRET = config.env_str("BUZON_OAUTH_GOOGLE_CLIENT_SECRET")
OAUTH_MICROSOFT_CLIENT_ID = config.env_str("BUZON_OAUTH_MICROSOFT_CLIENT_ID")
OAUTH_MICROSOFT_CLIENT_SECRET = config.env_str("BUZON_OAUTH_MICROSOFT_CLIENT_SECRET")
OAUTH_MICROSOFT_TENANT = config.env_str("BUZON_OAUTH_MICROSOFT_TENANT", "common")
OAUTH_PROVIDERS: dict[str, dict[str, object]] = {}
OAUTH_REFRESH_MARGIN_S = config.env_int("BUZON_OAUTH_REFRESH_MARGIN", 300)  # refresh this long before expiry
SYNC_POLL_INTERVAL_S = config.env_int("BUZON_SYNC_POLL_INTERVAL", 60)
# The task the sync engine enqueues for the messages it stored together, called with a list of raw
# message ids of at most INBOUND_TASK_BATCH (sync never imports the pipeline).
INBOUND_TASK = "buzon.inbound.tasks.process_raw_messages"
INBOUND_TASK_BATCH = config.env_int("BUZON_INBOUND_TASK_BATCH", 200)
# With a task backend outside the database (Redis): ids stored within this many seconds go as one
# task (buzon.sync.enqueue); 0 sends each commit's at once.
INBOUND_ENQUEUE_WINDOW_S = config.env_int("BUZON_INBOUND_ENQUEUE_WINDOW_MS", 200) / 1000
SYNC_LEASE_S = config.env_int("BUZON_SYNC_LEASE", 60)
# Sync engine (buzon.sync): retries, IDLE re-arm, batch sizes, timeouts.
SYNC_TIMEOUT_S = float(config.env_str("BUZON_SYNC_TIMEOUT", "60"))  # a server silent this long is stalled
SYNC_BACKOFF_BASE_S = float(config.env_str("BUZON_SYNC_BACKOFF_BASE", "5"))
SYNC_BACKOFF_MAX_S = float(config.env_str("BUZON_SYNC_BACKOFF_MAX", "600"))
SYNC_AUTH_BACKOFF_S = float(config.env_str("BUZON_SYNC_AUTH_BACKOFF", "300"))
SYNC_AUTH_BACKOFF_MAX_S = float(config.env_str("BUZON_SYNC_AUTH_BACKOFF_MAX", "21600"))
SYNC_IDLE_REARM_S = float(config.env_str("BUZON_SYNC_IDLE_REARM", "1500"))  # < the 29-minute server limit
SYNC_FETCH_CHUNK = config.env_int("BUZON_SYNC_FETCH_CHUNK", 250)
SYNC_FETCH_CHUNK_BYTES = config.env_int("BUZON_SYNC_FETCH_CHUNK_BYTES", 16 * 1024 * 1024)
SYNC_FETCH_DEPTH = config.env_int("BUZON_SYNC_FETCH_DEPTH", 3)  # FETCH chunks on the wire at once per folder
# Fetched mail a sync process holds before it is stored, all folders together (buzon.sync.budget).
SYNC_FETCH_BUDGET_BYTES = config.env_int("BUZON_SYNC_FETCH_BUDGET_MB", 256) * 1024 * 1024
SYNC_REFRESH_S = float(config.env_str("BUZON_SYNC_REFRESH", "1"))  # how often accounts and requests are re-read
SYNC_CLAIM_BATCH = config.env_int("BUZON_SYNC_CLAIM_BATCH", 100)  # leases taken per round (fair start-up)

# Outgoing mail (buzon.outbound). messages.outbox reaches the queue and the task by dotted path.
OUTBOUND_TASK = "buzon.outbound.tasks.deliver_outgoing"
# Mail queued while a delivery task waits to start joins it instead of enqueueing another
# (buzon.messages.outbox); on Redis the mark lasts at most this long. 0: a task per message.
OUTBOUND_COALESCE_S = config.env_int("BUZON_OUTBOUND_COALESCE", 10)
OUTBOUND_CHECK = "buzon.outbound.queue.check"  # whether the queue takes a send (outbox.prepare_many)
OUTBOUND_ADMIT = "buzon.outbound.queue.admit"  # its queue entry (outbox.store_many)
OUTBOUND_APPEND_TASK = "buzon.outbound.tasks.append_to_sent"
OUTBOUND_MAX_ATTEMPTS = config.env_int("BUZON_OUTBOUND_MAX_ATTEMPTS", 8)
OUTBOUND_RETRY_BASE_S = config.env_int("BUZON_OUTBOUND_RETRY_BASE", 60)
OUTBOUND_RETRY_MAX_S = config.env_int("BUZON_OUTBOUND_RETRY_MAX", 6 * 3600)
OUTBOUND_CLAIM_LEASE_S = config.env_int("BUZON_OUTBOUND_CLAIM_LEASE", 300)
OUTBOUND_BATCH = config.env_int("BUZON_OUTBOUND_BATCH", 200)
# A delivery task in a worker goes on claiming for this long after the queue was last found empty
# (mail sent one message a request then shares a task's fixed costs), for at most LINGER_MAX_S.
OUTBOUND_LINGER_S = float(config.env_str("BUZON_OUTBOUND_LINGER", "2"))
OUTBOUND_LINGER_MAX_S = float(config.env_str("BUZON_OUTBOUND_LINGER_MAX", "30"))
OUTBOUND_CONNECTIONS_PER_ACCOUNT = config.env_int("BUZON_OUTBOUND_CONNECTIONS", 16)
OUTBOUND_SMTP_TIMEOUT_S = float(config.env_str("BUZON_OUTBOUND_SMTP_TIMEOUT", "30"))
OUTBOUND_CONFIRM_SENDERS = config.env_bool("BUZON_OUTBOUND_CONFIRM_SENDERS", True)
OUTBOUND_DNS_SERVERS = config.env_list("BUZON_DNS_SERVERS")  # resolvers for the deliverability check

# Operations (buzon.core): heartbeats, periodic jobs shared by the workers, per-process counters.
HEARTBEAT_S = config.env_int("BUZON_HEARTBEAT", 10)  # a process silent for 3 beats is shown dead
# name -> (dotted task path, interval in seconds, *task args); one worker runs each per interval.
PERIODIC_TASKS = {
    "notify-unreplied": ("buzon.inbound.tasks.notify_unreplied_task", 60),
    "outbound-due": (OUTBOUND_TASK, config.env_int("BUZON_OUTBOUND_SWEEP", 30), 0),  # retries, lost tasks
    "inbound-requeue": ("buzon.inbound.tasks.requeue_stored_task", config.env_int("BUZON_INBOUND_SWEEP", 60)),
    "presence-sweep": ("buzon.crm.tasks.presence_sweep_task", 60),  # expired/idle sessions: agents offline
    # SQLite's planner statistics where missing or stale (buzon.core.housekeeping; nothing on PostgreSQL).
    "database-statistics": ("buzon.core.housekeeping.optimize_database_task",
                            config.env_int("BUZON_STATISTICS_EVERY", 3600)),
}
# A signed-in session unused this long no longer counts as "online" (buzon.crm.presence); the bell
# polls every minute, so a browser left open stays online.
AGENT_ONLINE_IDLE_MINUTES = config.env_int("BUZON_ONLINE_IDLE_MINUTES", 10)
# How long an invitation link to set one's first password works (buzon.core.invitations).
INVITATION_DAYS = config.env_int("BUZON_INVITATION_DAYS", 7)
# A stored message still unprocessed this long after arrival lost its task (worker killed, Redis restarted).
INBOUND_REQUEUE_AFTER_S = config.env_int("BUZON_INBOUND_REQUEUE_AFTER", 300)
# In-process counters each process's heartbeat publishes (summed by /metrics): name -> dotted path.
PROCESS_STATS = {"pipeline_step_seconds": "buzon.inbound.pipeline.STEP_SECONDS",
                 "pipeline_batch_stage_seconds": "buzon.inbound.batch.STAGE_SECONDS",
                 "worker_slots": "buzon.core.slots.SERVED"}  # a worker's slots per queue
METRICS_TOKEN = config.env_str("BUZON_METRICS_TOKEN")  # if set, /metrics wants "Authorization: Bearer <token>"
OUTBOUND_RENDER_TEMPLATE = "buzon.outbound.mail_templates.render_key"  # queue_outgoing(template="key")
INBOUND_REQUEUE_MAX_WAITING = config.env_int("BUZON_INBOUND_REQUEUE_MAX_WAITING", 20)  # only once the queue drained

# Sign-in protection and browser security (buzon/core/signin.py, buzon/web/security.py).
# Failed sign-ins are counted per (username, client address): 5 failures lock that pair for 15 min.
AUTHENTICATION_BACKENDS = ["buzon.core.signin.LockoutBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = config.env_int("BUZON_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=config.env_int("BUZON_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# ...and per address, whatever the username (one password tried over many usernames), with a higher
# limit since an office signs in from one address; wrong API tokens are limited per address as well.
AXES_HANDLER = "buzon.core.signin.AddressLockoutHandler"
LOGIN_ADDRESS_FAILURE_LIMIT = config.env_int("BUZON_LOGIN_ADDRESS_FAILURE_LIMIT", 20)
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "buzon.core.signin.client_ip"
AXES_LOCKOUT_CALLABLE = "buzon.web.security.locked_out"
AXES_VERBOSE = False
# Behind a TLS-terminating proxy: trust its X-Forwarded-Proto / X-Forwarded-For.
BUZON_BEHIND_PROXY = config.env_bool("BUZON_BEHIND_PROXY")
if BUZON_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Served over TLS: cookies only over TLS, and HSTS (Django sends it on HTTPS responses only).
BUZON_SECURE_COOKIES = config.env_bool("BUZON_SECURE_COOKIES")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = BUZON_SECURE_COOKIES
SECURE_HSTS_SECONDS = config.env_int("BUZON_HSTS_SECONDS", 31536000 if BUZON_SECURE_COOKIES else 0)
SECURE_SSL_REDIRECT = config.env_bool("BUZON_SSL_REDIRECT")
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SAMESITE = "Lax"
OTP_TOTP_ISSUER = "Buzón"
