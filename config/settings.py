"""Framecast settings, read from the environment (12-factor).

Every variable is optional: unset means the embedded default that `make run` uses
(SQLite, an in-process broker and channel layer, the CPU and the tiny model, all
under FRAMECAST_DATA_DIR). Production sets DATABASE_URL, REDIS_URL, SECRET_KEY,
DEBUG and ALLOWED_HOSTS; see platform/ and README.md.
"""

import os
import secrets
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off.")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None


# Everything the embedded mode writes (SQLite file, media, the tiny model, a generated
# secret key) lives in one folder, so deleting it resets a local install.
DATA_DIR = Path(os.environ.get("FRAMECAST_DATA_DIR", BASE_DIR / "var")).resolve()


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    # No key configured: keep one per data folder, so sessions survive restarts of
    # `make run` without anyone having to invent a secret.
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "billing",
    "generation",
    "gpu_workers",
    "openai_api",
    "ops",
    "safety",
]

# The content policy every submission passes first (generation.content_policy): generation
# sits below safety in the layers, so the composition root names it here.
FRAMECAST_CONTENT_POLICY = "safety.moderation"

MIDDLEWARE = [
    "core.request_id.RequestIdMiddleware",
    # A request the database cannot serve answers 503, not 500 (also handler500 in urls).
    "core.outages.DatabaseOutageMiddleware",
    "ops.prometheus.RequestMetricsMiddleware",
    "config.security.ContentSecurityPolicyMiddleware",
    # /healthz, /readyz, /metrics, /ops/scaling/<pool>: before host validation and the HTTPS redirect.
    "config.health.OperationsEndpointsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # No NUL or lone surrogate in the HTML pages' query strings and forms (core.cleaning).
    "core.form_input.FormInputMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

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

# --- Database -------------------------------------------------------------
# https://github.com/jazzband/dj-database-url
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # An unreachable database fails a request (and /readyz) in seconds instead of hanging.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT", 5)
    # A pool per process bounds its connections: under ASGI every concurrent request holds
    # one, so without a bound a burst takes every slot PostgreSQL has (max_connections).
    # Beyond DB_POOL_MAX_SIZE requests wait up to DB_POOL_TIMEOUT seconds, then get a 503.
    # Worker and beat processes use DB_WORKER_POOL_MAX_SIZE (config.celery_app). Sizing:
    # web processes × DB_POOL_MAX_SIZE + workers × DB_WORKER_POOL_MAX_SIZE ≤ max_connections.
    DB_POOL_MAX_SIZE = env_int("DB_POOL_MAX_SIZE", 10)
    DB_WORKER_POOL_MAX_SIZE = env_int("DB_WORKER_POOL_MAX_SIZE", 4)
    if DB_POOL_MAX_SIZE > 0:
        if DATABASES["default"]["CONN_MAX_AGE"]:
            raise ImproperlyConfigured("DB_CONN_MAX_AGE cannot be used with the connection pool; set DB_POOL_MAX_SIZE=0 to use it.")
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": min(env_int("DB_POOL_MIN_SIZE", 1), DB_POOL_MAX_SIZE),
            "max_size": DB_POOL_MAX_SIZE,
            "timeout": env_int("DB_POOL_TIMEOUT", 10),
            # A lost connection is retried with doubling delays until this many seconds,
            # then afresh at the next request: a database back after a long outage is used
            # within seconds, not after the last doubling (minutes, by default).
            "reconnect_timeout": 10,
        }
        # The pool checks a connection before lending it: after an outage it hands out
        # fresh connections, not the ones the outage cut.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded mode runs the web server and a worker thread on one SQLite file:
    # wait for the write lock instead of failing, and take it at BEGIN so two writers
    # never deadlock upgrading a read lock.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        # WAL with synchronous=NORMAL syncs at checkpoints, not at every commit: the file
        # cannot be corrupted, though a power cut may lose the last commits (the embedded
        # mode runs on one machine; production runs on PostgreSQL).
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests run threads (a worker's encoder, at_once, an ASGI server) beside the test: an
    # in-memory test database shares one cache with table locks that fail at once instead
    # of waiting, so tests use a file of this process's own, with WAL and the timeout above.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"framecast-test-{os.getpid()}.sqlite3")
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "generation:studio"
LOGOUT_REDIRECT_URL = "accounts:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Files ----------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Videos are never served from a public URL: generation.views streams them to the
# job's team only. MEDIA_ROOT is where the default storage keeps them.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", DATA_DIR / "media")).resolve()
MEDIA_URL = "/media/"
# At scale, videos go to S3-compatible object storage, switched on by naming the bucket
# (https://django-storages.readthedocs.io/en/latest/backends/amazon-S3.html). Its URLs
# are signed and expire after MEDIA_URL_EXPIRE_SECONDS; credentials come from the
# standard AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY variables or the host's role.
MEDIA_S3_BUCKET = os.environ.get("MEDIA_S3_BUCKET", "")
MEDIA_URL_EXPIRE_SECONDS = env_int("MEDIA_URL_EXPIRE_SECONDS", 600)
# Files no job references (a killed attempt's, a rolled-back submission's) are counted by
# an hourly sweep and, only with FRAMECAST_ORPHAN_SWEEP_DELETE, removed once this old.
FRAMECAST_ORPHAN_GRACE_HOURS = env_int("FRAMECAST_ORPHAN_GRACE_HOURS", 24)
FRAMECAST_ORPHAN_SWEEP_DELETE = env_bool("FRAMECAST_ORPHAN_SWEEP_DELETE", False)
if MEDIA_S3_BUCKET:
    MEDIA_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": MEDIA_S3_BUCKET,
            "endpoint_url": os.environ.get("MEDIA_S3_ENDPOINT_URL") or None,  # MinIO, R2, …
            "region_name": os.environ.get("MEDIA_S3_REGION") or None,
            "default_acl": None,  # private objects: reachable only through signed URLs
            "querystring_auth": True,
            "querystring_expire": MEDIA_URL_EXPIRE_SECONDS,
            "signature_version": "s3v4",  # v2 signatures are refused by newer regions and R2
            "file_overwrite": False,
        },
    }
else:
    MEDIA_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": MEDIA_STORAGE,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # `make run` serves static files without collectstatic

# --- Redis, Celery, Channels ----------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")

# https://docs.celeryq.dev/en/stable/userguide/configuration.html
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL or "memory://"
CELERY_TASK_ACKS_LATE = True  # a job is acknowledged when it ends, not when it starts
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # a GPU worker holds one job at a time
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # results live on the Job row, not in a result backend
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers log through LOGGING below (JSON with request and job ids), not Celery's format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# With late acks Redis redelivers a message that is not acknowledged within the
# visibility timeout, even while the first worker is still busy with it: keep it above
# the longest job. The task claims its job with a conditional UPDATE, so a redelivery
# of a job already claimed does nothing.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 6 * 3600)}
if CELERY_BROKER_URL.startswith("memory://"):
    # The in-process broker: kombu's memory transport, woken by each message instead of
    # polled (config/embedded_broker.py); the interval is only its longest sleep.
    CELERY_BROKER_TRANSPORT = "config.embedded_broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] = 1.0

# Login throttling and rate limits count in the cache, so it must be shared by every web
# process: Redis when configured; the embedded mode is a single process.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # Fail fast when Redis is away rather than hang every request that counts.
            "OPTIONS": {"socket_connect_timeout": 5, "socket_timeout": 5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 reads with a 5 s timeout by default, and channels_redis blocks 5 s
            # waiting for a message: every idle websocket would die with a TimeoutError.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30, "socket_connect_timeout": 5}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "config.channel_layers.ThreadSafeInMemoryChannelLayer"}}

# --- Generation -----------------------------------------------------------
# The model registry (pipeline class, weights, dtypes, limits, speed options of each model).
FRAMECAST_MODELS_FILE = Path(os.environ.get("FRAMECAST_MODELS_FILE", BASE_DIR / "generation" / "models.toml"))
# Worker pools (which models each serves, its GPU-hour price) and their queues.
FRAMECAST_POOLS_FILE = Path(os.environ.get("FRAMECAST_POOLS_FILE", BASE_DIR / "generation" / "pools.toml"))
FRAMECAST_QUEUE_PREFIX = os.environ.get("FRAMECAST_QUEUE_PREFIX", "")
# Periodic and light work (reaper, usage reports) goes to `<prefix>celery`.
CELERY_TASK_DEFAULT_QUEUE = f"{FRAMECAST_QUEUE_PREFIX}celery"
# Queue order: a job's head start in seconds per plan priority level (0-9). A Pro job
# (priority 8) overtakes Free jobs (0) that have waited less than 8 × this; older ones keep
# their place, so no job waits forever behind a stream of paid ones.
FRAMECAST_PRIORITY_HEAD_START_SECONDS = env_int("FRAMECAST_PRIORITY_HEAD_START_SECONDS", 60)
# Workers beat every FRAMECAST_HEARTBEAT_SECONDS; a worker silent for STALE seconds is
# presumed lost and its job goes back to the queue, at most FRAMECAST_MAX_ATTEMPTS times.
FRAMECAST_HEARTBEAT_SECONDS = env_int("FRAMECAST_HEARTBEAT_SECONDS", 5)
FRAMECAST_HEARTBEAT_STALE_SECONDS = env_int("FRAMECAST_HEARTBEAT_STALE_SECONDS", 60)
FRAMECAST_MAX_ATTEMPTS = env_int("FRAMECAST_MAX_ATTEMPTS", 3)
# While the database is away a worker retries its claim, the store of a finished clip and
# the end of an interrupted job for this long (with backoff) before it gives up on them.
FRAMECAST_DB_RETRY_SECONDS = env_int("FRAMECAST_DB_RETRY_SECONDS", 60)
# On SIGTERM a worker takes no new job and lets the one in hand finish if it will be
# stored within this many seconds; otherwise it stops at a step boundary and the job goes
# back to the queue in its place (gpu_workers/shutdown.py). Keep it under the pod's
# terminationGracePeriodSeconds minus one denoising step.
FRAMECAST_SHUTDOWN_GRACE_SECONDS = float(os.environ.get("FRAMECAST_SHUTDOWN_GRACE_SECONDS", "20"))
# A worker that finished a job claims the pool's next queued one at once, without waiting
# for a wake-up message (messages lost with a Redis restart then cost nothing), for up to
# this many seconds per message before it returns to the broker (its other queues get a turn).
FRAMECAST_CLAIM_LOOP_SECONDS = float(os.environ.get("FRAMECAST_CLAIM_LOOP_SECONDS", "60"))
# Threads that watermark, encode and store denoised clips while the GPU denoises the next
# (gpu_workers.runner.Finisher); as many clips as threads are held in memory at most.
# "auto": one per 2 cores, 1 to 4. Sizing: README, "Jobs, queues and workers".
FRAMECAST_FINISHER_THREADS = os.environ.get("FRAMECAST_FINISHER_THREADS", "1").strip().lower()
if FRAMECAST_FINISHER_THREADS != "auto" and not (
    FRAMECAST_FINISHER_THREADS.isdigit() and int(FRAMECAST_FINISHER_THREADS) >= 1
):
    raise ImproperlyConfigured(
        f"FRAMECAST_FINISHER_THREADS={FRAMECAST_FINISHER_THREADS!r} must be a whole number of threads (1 or more) or auto."
    )
# Whether a pool has a warm worker (the studio says "starting a GPU" when none is): a
# function of the pool's name, in gpu_workers, which generation sits below.
FRAMECAST_POOL_READINESS = "gpu_workers.selectors.pool_has_ready_worker"
# This site's address, for links in webhooks and mails sent outside a request.
FRAMECAST_PUBLIC_URL = os.environ.get("FRAMECAST_PUBLIC_URL", "http://127.0.0.1:8000")
# Live previews: at most one per this many seconds (and under 2% of denoising time).
FRAMECAST_PREVIEW_MIN_SECONDS = float(os.environ.get("FRAMECAST_PREVIEW_MIN_SECONDS", "1.0"))
# The job row's stored step (what a reloaded page resumes from) may lag the live step events
# by up to this: quick steps are written together (gpu_workers.runner._ProgressWrites). 0
# (the default): every step is written, so a page reloaded mid-job never shows less than it
# showed before; the saving measured was within the noise (bench/overhead.py).
FRAMECAST_PROGRESS_STORE_LAG_SECONDS = float(os.environ.get("FRAMECAST_PROGRESS_STORE_LAG_SECONDS", "0"))
# Customer webhooks may only target public addresses, unless this is on (development, tests).
FRAMECAST_WEBHOOKS_ALLOW_PRIVATE = env_bool("FRAMECAST_WEBHOOKS_ALLOW_PRIVATE", False)
# Only loopback endpoints are ever looked up or sent to (the test suite sets it: generated
# webhook URLs naming public hosts must not leave the machine). Others get a recorded
# attempt saying so.
FRAMECAST_WEBHOOKS_LOOPBACK_ONLY = env_bool("FRAMECAST_WEBHOOKS_LOOPBACK_ONLY", False)
# Fernet keys for secrets stored encrypted (core/crypto.py), newest first; unset: derived
# from SECRET_KEY.
FRAMECAST_ENCRYPTION_KEYS = env_list("FRAMECAST_ENCRYPTION_KEYS", "")
FRAMECAST_MODELS_DIR = Path(os.environ.get("FRAMECAST_MODELS_DIR", DATA_DIR / "models")).resolve()
# Where GPU workers keep verified copies of team LoRA files (named by SHA-256); unset:
# FRAMECAST_MODELS_DIR/lora-cache. FRAMECAST_LORA_DISK_CACHE_MB bounds it (default 10240).
FRAMECAST_LORA_CACHE_DIR = Path(os.environ["FRAMECAST_LORA_CACHE_DIR"]).resolve() if os.environ.get("FRAMECAST_LORA_CACHE_DIR") else None
# framecast-toy (trained, shipped in gpu_workers/weights/; its model card is the README.md
# there) draws what the prompt says within its world of coloured shapes; framecast-tiny
# (random weights) only shows that the machinery runs. Real checkpoints: see WAN21_* below.
FRAMECAST_DEFAULT_MODEL = os.environ.get("FRAMECAST_DEFAULT_MODEL", "framecast-toy")
# Local paths of Wan 2.1 T2V checkpoints in diffusers format (models.toml names these
# settings in `weights_env`). Unset: not offered.
WAN21_T2V_1_3B_PATH = os.environ.get("WAN21_T2V_1_3B_PATH", "")
WAN21_T2V_14B_PATH = os.environ.get("WAN21_T2V_14B_PATH", "")
# The folders of their turbo speeds' distillation LoRAs (generation/models.toml [models.turbo]).
WAN21_T2V_1_3B_TURBO_LORA_PATH = os.environ.get("WAN21_T2V_1_3B_TURBO_LORA_PATH", "")
WAN21_T2V_14B_TURBO_LORA_PATH = os.environ.get("WAN21_T2V_14B_TURBO_LORA_PATH", "")
WAN22_TI2V_5B_PATH = os.environ.get("WAN22_TI2V_5B_PATH", "")
# The model that OpenAI's model names (`sora-2`, `sora-2-pro`, dated versions) run on at
# /openai/v1/; empty: FRAMECAST_DEFAULT_MODEL.
FRAMECAST_OPENAI_DEFAULT_MODEL = os.environ.get("FRAMECAST_OPENAI_DEFAULT_MODEL", "")

# --- Safety and provenance (safety/, README "Provenance and safety") ------------
# The prompt policy: categories, their rules and actions (refuse / flag).
FRAMECAST_MODERATION_POLICY_FILE = Path(
    os.environ.get("FRAMECAST_MODERATION_POLICY_FILE", BASE_DIR / "safety" / "policy.toml")
)
# This many refused prompts within the window suspend the team's generation pending review.
FRAMECAST_SUSPEND_AFTER_REFUSALS = env_int("FRAMECAST_SUSPEND_AFTER_REFUSALS", 3)
FRAMECAST_SUSPEND_WINDOW_HOURS = env_int("FRAMECAST_SUSPEND_WINDOW_HOURS", 24)
# The largest video the verifier accepts.
FRAMECAST_VERIFY_MAX_MB = env_int("FRAMECAST_VERIFY_MAX_MB", 50)
# C2PA content credentials: a PEM certificate chain and its private key. Unset: MP4s carry
# the invisible watermark only.
FRAMECAST_C2PA_CERT_FILE = os.environ.get("FRAMECAST_C2PA_CERT_FILE", "")
FRAMECAST_C2PA_KEY_FILE = os.environ.get("FRAMECAST_C2PA_KEY_FILE", "")

# --- REST API ---------------------------------------------------------------
# https://www.django-rest-framework.org/api-guide/settings/
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.authentication.IsTeamActor"],
    "DEFAULT_THROTTLE_CLASSES": ["billing.rate_limits.PlanRequestThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's parsers with the input-cleaning rule (no NUL, no lone surrogate, bounded depth).
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser", "core.parsers.FormParser"],
    "EXCEPTION_HANDLER": "core.api_errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# https://drf-spectacular.readthedocs.io/en/latest/settings.html
SPECTACULAR_SETTINGS = {
    "TITLE": "Framecast API",
    "DESCRIPTION": (
        "Generate short videos from text. Authenticate with `Authorization: Bearer fc_...` (an API key made "
        "on the team's API keys page). Errors always have the shape "
        '`{"error": {"type": ..., "message": ..., "field": ...}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Swagger UI and Redoc from the sidecar package: the docs work without a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Stripe -------------------------------------------------------------------
# Unset (the embedded default): billing pages say Stripe is not configured, the Free plan's
# credits still work, and staff grant credits and set plans in the admin.
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
# Only for tests and local fakes: where the stripe SDK sends its requests.
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")
STRIPE_METER_EVENT_NAME = os.environ.get("STRIPE_METER_EVENT_NAME", "framecast_video_seconds")

# --- Email and account hygiene ----------------------------------------------
# Console by default: `make run` prints invitation and password-reset mails to its terminal.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Framecast <noreply@framecast.localhost>")
INVITATION_TTL_DAYS = env_int("INVITATION_TTL_DAYS", 7)
EMAIL_VERIFICATION_TTL_DAYS = env_int("EMAIL_VERIFICATION_TTL_DAYS", 3)
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60)

# --- Security ------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
# FRAMECAST_HTTPS: the site is served over HTTPS (usually by a proxy that terminates TLS;
# uvicorn trusts its X-Forwarded-Proto when the proxy's address is in FORWARDED_ALLOW_IPS).
# It turns on the redirect to HTTPS, secure cookies and HSTS: `manage.py check --deploy`
# is clean with it, DEBUG off, SECRET_KEY and ALLOWED_HOSTS set.
HTTPS = env_bool("FRAMECAST_HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
# The probes and the scrape are answered before this redirect (config.health); listed
# here too so that moving that middleware cannot break the compose health checks.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$", r"^ops/scaling/[^/]+$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Sent in every mode (config.security): no inline scripts or styles, nothing from other
# origins, except the media bucket's when videos are in object storage.
_MEDIA_ORIGIN = ""
if MEDIA_S3_BUCKET:
    from urllib.parse import urlsplit

    if os.environ.get("MEDIA_S3_ENDPOINT_URL"):
        _MEDIA_ORIGIN = " {0.scheme}://{0.netloc}".format(urlsplit(os.environ["MEDIA_S3_ENDPOINT_URL"]))
    else:  # AWS: virtual-hosted URLs, global or regional
        _MEDIA_ORIGIN = f" https://{MEDIA_S3_BUCKET}.s3.amazonaws.com"
        if os.environ.get("MEDIA_S3_REGION"):
            _MEDIA_ORIGIN += f" https://{MEDIA_S3_BUCKET}.s3.{os.environ['MEDIA_S3_REGION']}.amazonaws.com"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    f"img-src 'self' data: blob:{_MEDIA_ORIGIN}; media-src 'self' blob:{_MEDIA_ORIGIN}; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)

# --- Logs and metrics -----------------------------------------------------------
# LOG_FORMAT=json: one JSON object per line with request_id and job_id (core.logs).
from core.logs import logging_config  # noqa: E402 - settings are plain assignments above

try:
    LOGGING = logging_config(log_format=os.environ.get("LOG_FORMAT", "text"), level=os.environ.get("LOG_LEVEL", "INFO"))
except ValueError as error:
    raise ImproperlyConfigured(str(error)) from None
# Prometheus scrapes /metrics with `Authorization: Bearer <this>`; unset: loopback only.
FRAMECAST_METRICS_TOKEN = os.environ.get("FRAMECAST_METRICS_TOKEN", "")
# An autoscaler reads GET /ops/scaling/<pool> with `Authorization: Bearer <this>`; unset: refused.
FRAMECAST_SCALING_TOKEN = os.environ.get("FRAMECAST_SCALING_TOKEN", "")
