"""Settings shared by every environment. Everything comes from the environment
(django-environ); the defaults are the embedded ones `make run` uses: SQLite and
a Celery broker that needs no server."""
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONCE

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)
# Development defaults, public in this repository: production refuses both (settings/production.py).
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"
DEV_FIELD_ENCRYPTION_KEY = "3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
SECRET_KEY = env("SECRET_KEY", default=DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Key for connector credentials at rest (Fernet, urlsafe base64 of 32 bytes).
# Several keys may be given comma-separated: the first encrypts, all decrypt (rotation).
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[DEV_FIELD_ENCRYPTION_KEY])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "channels",
    "axes",
    "apps.core",
    "apps.accounts",
    "apps.contacts",
    "apps.connectors",
    "apps.routing",
    "apps.inbox",
    "apps.insights",
    "apps.ingest",  # above routing and the inbox: it writes conversations and routes them
    "apps.reports",
    "apps.ops",  # /metrics: reads every app above, none reads it
]

MIDDLEWARE = [
    # first: the request id (X-Request-ID) every log line of the request carries (apps/core/request_id.py)
    "apps.core.request_id.RequestIdMiddleware",
    # times the whole stack for /metrics (webhook accept latency, 5xx rate; apps/ops)
    "apps.ops.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # ?x=%00 is a 400 before any view or query runs (docs/api.md, "Bad parameters")
    "apps.core.middleware.RefuseNulQueryMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # a NUL in a page's form field becomes U+FFFD (PostgreSQL stores none; apps/core/middleware.py)
    "apps.core.middleware.CleanFormTextMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
    # last_seen_at and presence from activity (apps/accounts, docs/roles.md)
    "apps.accounts.middleware.PresenceActivityMiddleware",
    # Idempotency-Key on API writes; last: it runs the view inside the key's transaction
    "apps.core.idempotency.IdempotencyMiddleware",
]

# What a push delivery (/hooks/) goes through in the ASGI web tier (cxinbox/asgi_hooks.py), in
# MIDDLEWARE's order: its id, its timing, the security headers, the NUL check. Sessions, CSRF (the
# view is exempt: deliveries are signed), users, presence, CSP and idempotency mean nothing to a
# network's signed POST, and cost a fifth of its time there (issue 19).
HOOKS_MIDDLEWARE = [
    "apps.core.request_id.RequestIdMiddleware",
    "apps.ops.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.RefuseNulQueryMiddleware",
]

ROOT_URLCONF = "cxinbox.urls"
WSGI_APPLICATION = "cxinbox.wsgi.application"
ASGI_APPLICATION = "cxinbox.asgi.application"

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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # web, worker and beat share the file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
# The ASGI web tier runs each request's Django code in a thread of its own, so a persistent
# connection would be one per request, never reused: it takes them from a pool per process
# instead (DB_POOL_MAX_SIZE, set by deploy/gunicorn.conf.py; docs/operations.md, "Serving").
if env.int("DB_POOL_MAX_SIZE", default=0) > 0 and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1, "max_size": env.int("DB_POOL_MAX_SIZE"), "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"  # "/" sends each role to its own page
LOGOUT_REDIRECT_URL = "login"

# Login lockout (django-axes): AXES_FAILURE_LIMIT failures lock the username (from any
# address) and, separately, the client address (over any usernames: a password spray)
# for AXES_COOLOFF_MINUTES after the last counted failure. Attempts during a lockout are
# refused and not counted, so they do not extend it. A good login clears only its own
# user's failures (apps/accounts/lockout.py), never the address's.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = False
# The client address for the lockout and the API throttles: REMOTE_ADDR, or, behind
# TRUSTED_PROXY_COUNT proxies that each append to X-Forwarded-For, the entry that many
# from the right (docs/operations.md). Never the header when no proxy is declared.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "apps.accounts.lockout.client_ip_address"
# API throttles (DRF; 429 with Retry-After): per client address without a login, per
# user with one. Generous: they stop floods and token guessing, not work. "" = off.
API_THROTTLE_ANON_RATE = env("API_THROTTLE_ANON_RATE", default="300/min")
API_THROTTLE_USER_RATE = env("API_THROTTLE_USER_RATE", default="3000/min")

# Presence (apps/accounts): activity keeps agents online; the sweep marks idle ones away, then offline.
PRESENCE_TOUCH_SECONDS = env.int("PRESENCE_TOUCH_SECONDS", default=60)
PRESENCE_AWAY_AFTER_SECONDS = env.int("PRESENCE_AWAY_AFTER_SECONDS", default=300)
PRESENCE_OFFLINE_AFTER_SECONDS = env.int("PRESENCE_OFFLINE_AFTER_SECONDS", default=3600)
API_TOKENS_PER_USER = env.int("API_TOKENS_PER_USER", default=10)
# Supervisor dashboard: an open conversation is "at risk" when its SLA is due within this many minutes.
SLA_AT_RISK_MINUTES = env.int("SLA_AT_RISK_MINUTES", default=15)

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")

# --- Redis, Celery, Channels ---------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")

if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # kombu's Redis transport plus a repair so workers survive a Redis restart (see the module).
    CELERY_BROKER_TRANSPORT = "cxinbox.broker:Transport"
    # Seconds before an unacknowledged task (its worker died) is handed to another
    # worker. Keep it above the longest task and the longest retry countdown/ETA
    # (a 429 waits up to 15 minutes), or a live task is redelivered a second time.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
        # How often a worker sweeps for such abandoned tasks (kombu's defaults: every
        # 10th tick of 10 s); the tests and the soak shorten it with the timeout.
        "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
        "unacked_restore_throttle": env.int("CELERY_UNACKED_RESTORE_THROTTLE", default=10),
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    # A web worker waits for its sockets' messages with BZPOPMIN of 5 s (channels-redis); redis-py 8
    # reads every reply within 5 s by default, so a quiet 5 s raised TimeoutError in the waiting
    # consumer and closed an agent's socket (1011) every few seconds, losing the pushes meanwhile
    # (bench/live_inbox.py). The read timeout must outlast the blocking wait.
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                    "CONFIG": {"hosts": [{"address": REDIS_URL,
                                          "socket_timeout": env.float("CHANNEL_LAYER_SOCKET_TIMEOUT", default=15.0)}]}}
    }
else:
    # Embedded default: a file-system broker (kombu's filesystem transport) so
    # `make run` needs no server. Web, worker and beat share the folder.
    _broker_dir = Path(env("EMBEDDED_DIR", default=str(BASE_DIR / ".broker")))  # a test's system keeps its own
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    # kombu's, writing each message whole before a worker can see it (cxinbox/broker.py)
    CELERY_BROKER_TRANSPORT = "cxinbox.broker:FileTransport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(_broker_dir / "cache"),
        }
    }
    # Group messages cross processes through a folder (apps/core/channel_layer.py): the worker's
    # pushes reach the sockets the web process holds; the in-memory layer kept them in the worker.
    CHANNEL_LAYERS = {"default": {"BACKEND": "apps.core.channel_layer.SpoolChannelLayer",
                                  "CONFIG": {"folder": str(_broker_dir / "events")}}}

CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_ON_FAILURE_OR_TIMEOUT = True
# A pool process killed mid-task (SIGKILL, OOM) puts the task back on the queue
# instead of acking it as failed: with acks_late that is what "redone once" needs.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Every task is stopped well before the visibility timeout (3600 s): a task still running
# then is handed to a second worker and runs twice. The soft limit raises in the task
# (its transaction rolls back; a retrying task retries), the hard one kills the process.
# Keep CELERY_VISIBILITY_TIMEOUT above every limit (tests/connectors/test_task_time_limits.py).
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
# Legitimately longer: a digest to every supervisor, a bulk reassignment in chunks, rollups
# catching up after an outage, the report cache warmed for every team.
_LONG_TASK = {"soft_time_limit": env.int("CELERY_LONG_TASK_SOFT_TIME_LIMIT", default=1500),
              "time_limit": env.int("CELERY_LONG_TASK_TIME_LIMIT", default=1800)}
CELERY_TASK_ANNOTATIONS = {name: _LONG_TASK for name in (
    "reports.weekly_digest", "reports.apply_rollups", "reports.warm_cache", "accounts.bulk_assign")}
# Celery's Django fixup closes the database connection before and after every task
# unless this is set: a new PostgreSQL connection (and backend process) per task cost
# more than a one-mention ingest or a routing check (docs/performance-history.md). Set out of
# reach here; cxinbox/celery.py applies Django's own rule instead (CONN_MAX_AGE, and a
# connection that failed is dropped), as for a web request.
CELERY_DB_REUSE_MAX = 10**9
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "connectors.*": {"queue": "ingest"},
    "ingest.*": {"queue": "ingest"},
    "routing.*": {"queue": "routing"},
    "outbound.*": {"queue": "outbound"},
    "reports.*": {"queue": "reports"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "poll-all-accounts": {"task": "connectors.poll_due_accounts", "schedule": env.float("POLL_INTERVAL_SECONDS", default=15.0)},
    # Push deliveries whose ingest task was lost (Redis crash) or failed are queued again.
    "push-deliveries-sweep": {"task": "connectors.push_deliveries_sweep",
                              "schedule": env.float("PUSH_SWEEP_SECONDS", default=30.0)},
    "presence-sweep": {"task": "accounts.presence_sweep", "schedule": 60.0},
    # Routing: SLA breaches raised within a minute; waiting conversations climb in priority.
    "routing-check-sla": {"task": "routing.check_sla", "schedule": env.float("SLA_CHECK_SECONDS", default=60.0)},
    "routing-age-priorities": {"task": "routing.age_priorities",
                               "schedule": env.float("PRIORITY_AGING_SECONDS", default=300.0)},
    # Customer messages whose routing task was lost (Redis down when queued) are routed anyway.
    "routing-unrouted-sweep": {"task": "routing.unrouted_sweep",
                               "schedule": env.float("ROUTING_SWEEP_SECONDS", default=60.0)},
    # Replies left queued/sending (their send task lost with Redis) are sent again (never posted twice).
    "outbound-send-sweep": {"task": "outbound.send_sweep", "schedule": env.float("REPLY_SWEEP_SECONDS", default=60.0)},
    # API Idempotency-Keys past their 24 h retention.
    "core-idempotency-keys-purge": {"task": "core.idempotency_keys_purge", "schedule": 3600.0},
    # Reports: rollups stay current (services also ask for an apply after each change).
    "reports-apply-rollups": {"task": "reports.apply_rollups", "schedule": 60.0},
    "reports-weekly-digest": {"task": "reports.weekly_digest",
                              "schedule": crontab(minute=0, hour=7, day_of_week="mon")},
}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True

# --- Providers: every network's API base URL is a setting ---------------------
TWITTER_API_BASE_URL = env("TWITTER_API_BASE_URL", default="https://api.twitter.com")
PROVIDER_TIMEOUT_SECONDS = env.float("PROVIDER_TIMEOUT_SECONDS", default=10.0)
# How many pages one poll may fetch before it yields (the next poll resumes).
POLL_MAX_PAGES = env.int("POLL_MAX_PAGES", default=10)
# A polled account whose last successful poll is older than this shows as falling behind on the
# connector-health page (its mentions reach the inbox late); the soak's p99 bound is the same.
POLL_FALLING_BEHIND_SECONDS = env.int("POLL_FALLING_BEHIND_SECONDS", default=120)
# Demo network: how many simulated mentions each poll produces.
DEMO_MENTIONS_PER_POLL = env.int("DEMO_MENTIONS_PER_POLL", default=2)
# Demo network: the share of replies it refuses (half 429 with Retry-After, half 500), so the
# inbox's waiting and failure paths show in the demo. 0 turns it off; the tests run with 0.
DEMO_NETWORK_FAILURE_RATE = env.float("DEMO_NETWORK_FAILURE_RATE", default=0.1)
# Other networks (docs/connectors.md). Mastodon and Bluesky accounts may name their own
# instance / PDS (ChannelAccount.api_base_url); these are the defaults.
MASTODON_API_BASE_URL = env("MASTODON_API_BASE_URL", default="https://mastodon.social")
BLUESKY_API_BASE_URL = env("BLUESKY_API_BASE_URL", default="https://bsky.social")
REDDIT_OAUTH_URL = env("REDDIT_OAUTH_URL", default="https://oauth.reddit.com")
REDDIT_URL = env("REDDIT_URL", default="https://www.reddit.com")
REDDIT_USER_AGENT = env("REDDIT_USER_AGENT", default="cxinbox/1.0 (social customer care inbox)")
# Longest message text stored from any network (more is cut, with a visible marker):
# a 900 KB message held a worker for minutes (docs/connectors.md, "Hostile input at the edge").
INGEST_MAX_TEXT_CHARS = env.int("INGEST_MAX_TEXT_CHARS", default=20000)
# Push delivery (/hooks/<provider>/<account>/): largest body taken, and how old a signed
# timestamp may be before the delivery counts as a replay.
HOOKS_MAX_BODY_BYTES = env.int("HOOKS_MAX_BODY_BYTES", default=1024 * 1024)
HOOKS_REPLAY_WINDOW_SECONDS = env.int("HOOKS_REPLAY_WINDOW_SECONDS", default=300)
# A push delivery still pending this long is queued again (its task was lost or failed);
# keep it above a normal ingest's time so a live task is rarely doubled (harmless anyway).
PUSH_REDELIVER_SECONDS = env.float("PUSH_REDELIVER_SECONDS", default=60.0)
# Ingest attempts before a delivery is marked failed and shown on the connector-health page.
PUSH_DELIVERY_MAX_ATTEMPTS = env.int("PUSH_DELIVERY_MAX_ATTEMPTS", default=5)
# One ingest task takes up to this many of an account's pending push deliveries
# (one transaction, one routing batch): one-mention deliveries at 200/s need it. A
# task takes what waits, so a bigger batch only matters in a backlog, where a batch
# of 500 stores ~1.5x what 100 do per CPU second (docs/performance-history.md item 28).
PUSH_INGEST_BATCH = env.int("PUSH_INGEST_BATCH", default=500)
# ... and at most this many mentions in all: a transaction's locks (one advisory lock per new
# author) stay bounded by mentions; a bigger delivery is kept as several of this size.
PUSH_INGEST_MAX_MENTIONS = env.int("PUSH_INGEST_MAX_MENTIONS", default=500)
# An ingest task that starts within this long of its delivery's arrival waits until then,
# so it takes what arrives meanwhile too: a trickle costs a task per few mentions otherwise.
# The most it adds to a mention's arrival -> routed time; 0 turns it off (issue 19).
PUSH_INGEST_GATHER_SECONDS = env.float("PUSH_INGEST_GATHER_SECONDS", default=0.15)
# While an account's ingest task waits in the queue, further deliveries queue none; the
# task clears the flag as it starts. Expiry only matters should that task be lost.
PUSH_INGEST_COALESCE_SECONDS = env.int("PUSH_INGEST_COALESCE_SECONDS", default=10)
# An account's "last push" on the health page is written at most this often (not in every
# delivery's transaction: that row lock serialized an account's deliveries; issue 19).
PUSH_HEALTH_WRITE_SECONDS = env.int("PUSH_HEALTH_WRITE_SECONDS", default=5)
# The production web tier keeps each push account it looked up this long: deactivating an
# account or rotating its secret reaches the webhook up to this much later (0: look up every time).
PUSH_ACCOUNT_CACHE_SECONDS = env.float("PUSH_ACCOUNT_CACHE_SECONDS", default=2.0)
# Done push deliveries are kept this long (a record of what came in), then dropped by the sweep.
PUSH_DELIVERY_KEEP_DAYS = env.int("PUSH_DELIVERY_KEEP_DAYS", default=7)
# A customer message still unrouted this long after it was stored is routed by the sweep
# (well above a routing task's normal wait, so a live task is rarely doubled; routing is idempotent).
ROUTING_UNROUTED_AFTER_SECONDS = env.float("ROUTING_UNROUTED_AFTER_SECONDS", default=120.0)

# --- /metrics (Prometheus; apps/ops, docs/operations.md "Metrics") ------------------
# 404 unless one is set: a bearer token the scraper sends (Authorization: Bearer ...),
# and/or client addresses or networks (comma-separated, e.g. 10.0.0.0/8) let in without it.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOW_IPS = env.list("METRICS_ALLOW_IPS", default=[])

# --- Content-Security-Policy (django-csp), in every environment -----------------
# Scripts only from our own static files, or inline with the request's nonce
# (`<script nonce="{{ request.csp_nonce }}">`); no inline event handlers. Inline
# style attributes are allowed (they cannot carry a nonce; htmx and Chart.js set
# styles too). Images may come from the networks' CDNs (avatars): any https URL,
# never javascript:. Websockets go to this host ('self' covers ws/wss of it).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "https:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- REST API -----------------------------------------------------------------
# Idempotency-Key (apps/core/idempotency.py): how long a key is kept, and how long a
# second request waits for the first one with its key before a 409.
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
IDEMPOTENCY_WAIT_SECONDS = env.float("IDEMPOTENCY_WAIT_SECONDS", default=10.0)
# A reply still queued/sending this long after it was due (its task lost) is queued again.
REPLY_SWEEP_AFTER_SECONDS = env.float("REPLY_SWEEP_AFTER_SECONDS", default=120.0)
# The same text from the same agent on one conversation within this many seconds is one reply
# (a double click, a blind retry): the first is returned, nothing is posted twice.
REPLY_DUPLICATE_WINDOW_SECONDS = env.float("REPLY_DUPLICATE_WINDOW_SECONDS", default=10.0)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Named, revocable per-user tokens (apps/accounts); DRF's single token still works.
        "apps.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Rates: API_THROTTLE_ANON_RATE / API_THROTTLE_USER_RATE above.
    "DEFAULT_THROTTLE_CLASSES": ["apps.accounts.lockout.AnonThrottle", "apps.accounts.lockout.UserThrottle"],
    # JSON bodies: too deep, NUL, lone surrogates -> 400; past DATA_UPLOAD_MAX_MEMORY_SIZE -> 413 (apps/core/parsers.py)
    "DEFAULT_PARSER_CLASSES": [
        "apps.core.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.core.errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "cxinbox API",
    "DESCRIPTION": "Social customer care inbox: conversations, replies, routing and reports.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from our own static files: /api/docs/ works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.schema.spectacular_errors_hook",  # every error: {"detail": ...} (docs/api.md)
        "apps.core.idempotency.spectacular_idempotency_hook",  # the Idempotency-Key header
    ],
}


def logging_config(log_format: str) -> dict:
    """LOGGING for LOG_FORMAT: "plain" (development) or "json" (production: one JSON object a
    line). Either way every line names its request id, and in a Celery worker its task
    (apps/core/logging.py); Celery workers keep this configuration (cxinbox/celery.py)."""
    if log_format not in ("plain", "json"):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain (got {log_format!r})")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_context": {"()": "apps.core.logging.RequestContextFilter"}},
        "formatters": {"plain": {"()": "apps.core.logging.PlainFormatter"},
                       "json": {"()": "apps.core.logging.JsonFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": log_format,
                                 "filters": ["request_context"]}},
        "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
        # tweepy logs request headers (the bearer token) at DEBUG, and oauthlib /
        # requests-oauthlib log the consumer key, access token and signed headers of
        # every OAuth 1.0a request (tests/security/test_secrets.py): never let them through.
        "loggers": {"tweepy": {"level": "INFO"}, "oauthlib": {"level": "INFO"},
                    "requests_oauthlib": {"level": "INFO"}, "axes": {"level": "WARNING"}},
    }


LOG_FORMAT = env("LOG_FORMAT", default="plain")  # production: json (settings/production.py)
LOGGING = logging_config(LOG_FORMAT)

# --- Reports ------------------------------------------------------------------
# Public address used in links sent to customers (survey links): set it to the address customers
# reach this server at, or the links point at localhost.
SITE_URL = env("SITE_URL", default="http://localhost:8000")
# The name customers see on the pages meant for them (the survey page): your brand, not the product's.
BRAND_NAME = env("BRAND_NAME", default="cxinbox")
REPORTS_SURVEY_MAX_AGE_DAYS = env.int("REPORTS_SURVEY_MAX_AGE_DAYS", default=30)
# Business hours for the business-hours response figures, in the queue team's time zone.
REPORTS_BUSINESS_HOURS = {"days": [0, 1, 2, 3, 4], "opens": "09:00", "closes": "17:00"}
# Handle time: gaps between an agent's signals longer than idle_seconds are not counted; one session at most max.
REPORTS_HANDLE_TIME = {"idle_seconds": 300, "max_session_seconds": 4 * 3600}
REPORTS_KEYWORDS = env.list("REPORTS_KEYWORDS", default=["refund", "cancel", "delivery", "outage", "price", "app"])
REPORTS_SPIKE = {"volume_factor": 3.0, "min_volume": 10, "negative_points": 25.0, "min_scored": 8}
# The reports' applier steps aside while mentions have waited over REPORTS_YIELD_BACKLOG_SECONDS to be
# stored or routed (0: never), trying again every REPORTS_YIELD_RETRY_SECONDS, unless the reports are
# already REPORTS_YIELD_MAX_SECONDS behind (apps/reports/pacing.py).
REPORTS_YIELD_BACKLOG_SECONDS = env.float("REPORTS_YIELD_BACKLOG_SECONDS", default=1.0)
REPORTS_YIELD_RETRY_SECONDS = env.int("REPORTS_YIELD_RETRY_SECONDS", default=10)
REPORTS_YIELD_MAX_SECONDS = env.int("REPORTS_YIELD_MAX_SECONDS", default=600)
REPORTS_GAP_FRT_TARGET_SECONDS = env.int("REPORTS_GAP_FRT_TARGET_SECONDS", default=3600)
