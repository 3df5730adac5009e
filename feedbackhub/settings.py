"""FeedbackHub settings: one file, driven by the environment.

No environment at all gives a development setup (DEBUG on, SQLite file in the
project root, throwaway secret key). Production sets DJANGO_DEBUG=false,
DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE), DJANGO_ALLOWED_HOSTS and
DATABASE_URL; see the README for every variable.
"""

import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

DEV_SECRET_KEY = "django-insecure-feedbackhub-development-key-do-not-use"


def env_str(name: str, default: str = "") -> str:
    """A string from the environment, or from the file named by NAME_FILE (Docker/K8s secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true or false)")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


def env_json_object(name: str) -> dict:
    """A JSON object from the environment ({} when unset); anything else is ImproperlyConfigured."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY in (DEV_SECRET_KEY, ""):
    raise ImproperlyConfigured("DJANGO_DEBUG is off but DJANGO_SECRET_KEY is the development key; set a real secret.")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "feedbackhub",
    "traces",
    "assessments",
    "assessments.queues",
    "assessments.insights.apps.InsightsConfig",
    "assessments.datasets",
    "assessments.retention",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "feedbackhub.security.SecurityHeadersMiddleware",
    "feedbackhub.middleware.RequestGuardMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "feedbackhub.urls"
WSGI_APPLICATION = "feedbackhub.wsgi.application"

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

# Database: SQLite file by default; DATABASE_URL=postgres://… selects PostgreSQL
# (psycopg 3). DB_POOL_MAX>0 turns on Django's psycopg pool; otherwise
# connections persist for DB_CONN_MAX_AGE seconds (persistent connections
# measured faster than the pool behind sync gunicorn workers, see docs/PERFORMANCE.md).
DATABASES = {
    # `or`, not config(default=…): an exported-but-empty DATABASE_URL must still mean SQLite.
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
if IS_POSTGRES and env_int("DB_POOL_MAX", 0) > 0:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool refuses persistent connections
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        # timeout: how long a request waits for a pooled connection. While the database is
        # down every request waits this long before its 503, holding a gunicorn thread (and
        # queueing /healthz behind it), so keep it short (tests/reliability measure it).
        "min_size": 1,
        "max_size": env_int("DB_POOL_MAX", 0),
        "timeout": env_int("DB_POOL_TIMEOUT", 2),
    }
if IS_POSTGRES:
    # A dead database must answer fast (503), not hang a worker.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", env_int("DB_CONNECT_TIMEOUT", 3))
else:
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

# Read replicas (feedbackhub.replicas): DATABASE_REPLICA_URLS=postgres://…,postgres://… adds
# PostgreSQL streaming replicas as replica1, replica2, …; views marked @reads_from_replica read
# from a healthy one, everything else uses the primary. Tests mirror them onto the primary.
for _index, _url in enumerate(env_list("DATABASE_REPLICA_URLS"), start=1):
    _replica = dj_database_url.parse(_url, conn_max_age=env_int("DB_CONN_MAX_AGE", 0), conn_health_checks=True)
    _replica.setdefault("OPTIONS", {}).setdefault("connect_timeout", env_int("DB_REPLICA_CONNECT_TIMEOUT", 1))
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES[f"replica{_index}"] = _replica
if len(DATABASES) > 1:
    DATABASE_ROUTERS = ["feedbackhub.replicas.ReplicaRouter"]
FEEDBACKHUB_REPLICA_MAX_LAG_SECONDS = env_int("FEEDBACKHUB_REPLICA_MAX_LAG_SECONDS", 10)
# How often each process asks a replica for its lag (and retries one that was down).
FEEDBACKHUB_REPLICA_CHECK_SECONDS = env_int("FEEDBACKHUB_REPLICA_CHECK_SECONDS", 2)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "traces:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Request size: DATA_UPLOAD_MAX_MEMORY_SIZE makes Django answer 413-worthy errors
# for bodies above it; FEEDBACKHUB_MAX_BODY_BYTES is checked by the API first.
FEEDBACKHUB_MAX_BODY_BYTES = env_int("FEEDBACKHUB_MAX_BODY_BYTES", 20 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = FEEDBACKHUB_MAX_BODY_BYTES
FEEDBACKHUB_MAX_SPANS_PER_TRACE = env_int("FEEDBACKHUB_MAX_SPANS_PER_TRACE", 10_000)
# inputs + outputs + attributes + events of one span, as JSON
FEEDBACKHUB_MAX_SPAN_BYTES = env_int("FEEDBACKHUB_MAX_SPAN_BYTES", 5 * 1024 * 1024)
# Model prices (USD per million tokens) over the table shipped in traces/prices.json, e.g.
# {"my-finetune": {"input": 3.0, "output": 12.0, "cache_read": 1.5}} (traces.usage).
FEEDBACKHUB_MODEL_PRICES = env_json_object("FEEDBACKHUB_MODEL_PRICES")
FEEDBACKHUB_MAX_VALUE_BYTES = env_int("FEEDBACKHUB_MAX_VALUE_BYTES", 1024 * 1024)
FEEDBACKHUB_MAX_METADATA_ENTRIES = env_int("FEEDBACKHUB_MAX_METADATA_ENTRIES", 100)
FEEDBACKHUB_MAX_FILTER_LENGTH = env_int("FEEDBACKHUB_MAX_FILTER_LENGTH", 4000)
# PostgreSQL statement_timeout (ms) for user-driven searches (feedbackhub.timeouts); 0 turns it off.
FEEDBACKHUB_SEARCH_TIMEOUT_MS = env_int("FEEDBACKHUB_SEARCH_TIMEOUT_MS", 10_000)
# Traces one delete call may remove (MLflow DeleteTraces by ids or by time; the CLI can repeat).
FEEDBACKHUB_DELETE_TRACES_MAX = env_int("FEEDBACKHUB_DELETE_TRACES_MAX", 10_000)
# Feedback for a trace id not seen yet is held this long before it expires.
FEEDBACKHUB_PENDING_FEEDBACK_SECONDS = env_int("FEEDBACKHUB_PENDING_FEEDBACK_SECONDS", 3600)
# How long a worker trusts its cached feedback definitions before it compares their stamp with
# the database's (one indexed read per experiment at most this often); a change made through
# this worker is seen at once. 0 compares on every write.
FEEDBACKHUB_DEFINITIONS_RECHECK_MS = env_int("FEEDBACKHUB_DEFINITIONS_RECHECK_MS", 1000)
# Review queues: how long a worker trusts its cached list of an experiment's queues and rules.
FEEDBACKHUB_QUEUE_RULES_RECHECK_MS = env_int("FEEDBACKHUB_QUEUE_RULES_RECHECK_MS", 1000)
# A resolved API key is reused in-process this long (no query per request); a key revoked in
# another worker stops working within it. 0 turns the cache off.
FEEDBACKHUB_API_KEY_CACHE_SECONDS = env_int("FEEDBACKHUB_API_KEY_CACHE_SECONDS", 5)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "traces.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["feedbackhub.api.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "feedbackhub.api.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SPECTACULAR_SETTINGS = {
    "TITLE": "FeedbackHub API",
    "DESCRIPTION": "Store GenAI traces and collect feedback on them.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Security: safe defaults that only bite in production (docs/DEPLOYING.md lists the variables;
# `DJANGO_DEBUG=false DJANGO_SECRET_KEY=… DJANGO_ALLOWED_HOSTS=… manage.py check --deploy` is clean).
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# Django's database sessions, the per-request read written out (feedbackhub/sessions.py).
SESSION_ENGINE = "feedbackhub.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
# Load balancers probe over plain HTTP on the app port.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many reverse proxies append to X-Forwarded-For; 0 trusts only REMOTE_ADDR (rate limits, lockout).
FEEDBACKHUB_TRUSTED_PROXIES = env_int("FEEDBACKHUB_TRUSTED_PROXIES", 0)
REST_FRAMEWORK["NUM_PROXIES"] = FEEDBACKHUB_TRUSTED_PROXIES

# Content-Security-Policy (feedbackhub.security): only our own scripts and styles, no inline code.
FEEDBACKHUB_CSP = env_str(
    "FEEDBACKHUB_CSP",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)
FEEDBACKHUB_CSP_REPORT_ONLY = env_bool("FEEDBACKHUB_CSP_REPORT_ONLY", False)

# Rate limits ("<count>/<second|minute|hour|day>"; empty turns one off). Counters live in the
# cache: LocMemCache counts per gunicorn worker, DJANGO_CACHE_DIR shares them between workers.
FEEDBACKHUB_RATE_LIMITS = {
    "api_key": env_str("FEEDBACKHUB_RATE_API_KEY", "6000/minute"),
    "user": env_str("FEEDBACKHUB_RATE_USER", "1200/minute"),
    "public_ip": env_str("FEEDBACKHUB_RATE_PUBLIC_IP", "60/minute"),
    "public_token": env_str("FEEDBACKHUB_RATE_PUBLIC_TOKEN", "10/minute"),
}
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [
    "feedbackhub.throttling.ApiKeyRateThrottle",
    "feedbackhub.throttling.UserRateThrottle",
]
if env_str("DJANGO_CACHE_DIR"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": env_str("DJANGO_CACHE_DIR"),
        }
    }
# Several app servers: FEEDBACKHUB_REDIS_URL=redis://host:6379/0 keeps everything they must share
# (rate limits, login lockouts, definitions stamps) in Redis through Django's own backend.
FEEDBACKHUB_REDIS_URL = env_str("FEEDBACKHUB_REDIS_URL")
if FEEDBACKHUB_REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": FEEDBACKHUB_REDIS_URL,
            "KEY_PREFIX": env_str("FEEDBACKHUB_REDIS_KEY_PREFIX", "feedbackhub"),
            # A lost Redis must answer fast, not hang a worker.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    # Django imports the client on first use: here, so gunicorn's preload imports it once before
    # forking instead of in every worker's first request (seconds on a loaded host).
    import redis  # noqa: F401, E402

# Login brute-force protection: after N failures for one username from one address, that pair
# is refused for the lockout period; one address is refused after N_PER_IP failures in total.
FEEDBACKHUB_LOGIN_MAX_FAILURES = env_int("FEEDBACKHUB_LOGIN_MAX_FAILURES", 5)
FEEDBACKHUB_LOGIN_MAX_FAILURES_PER_IP = env_int("FEEDBACKHUB_LOGIN_MAX_FAILURES_PER_IP", 50)
FEEDBACKHUB_LOGIN_LOCKOUT_SECONDS = env_int("FEEDBACKHUB_LOGIN_LOCKOUT_SECONDS", 900)

# API key rotation: the replaced key keeps working this long.
FEEDBACKHUB_KEY_ROTATION_GRACE_SECONDS = env_int("FEEDBACKHUB_KEY_ROTATION_GRACE_SECONDS", 24 * 3600)

# End-user feedback tokens (assessments.public_api): browsers of these origins may post.
FEEDBACKHUB_CORS_ORIGINS = env_list("FEEDBACKHUB_CORS_ORIGINS")
FEEDBACKHUB_PUBLIC_TOKEN_DEFAULT_SECONDS = env_int("FEEDBACKHUB_PUBLIC_TOKEN_DEFAULT_SECONDS", 24 * 3600)
FEEDBACKHUB_PUBLIC_TOKEN_MAX_SECONDS = env_int("FEEDBACKHUB_PUBLIC_TOKEN_MAX_SECONDS", 30 * 24 * 3600)
FEEDBACKHUB_PUBLIC_MAX_USES = env_int("FEEDBACKHUB_PUBLIC_MAX_USES", 100)
FEEDBACKHUB_PUBLIC_MAX_TEXT = env_int("FEEDBACKHUB_PUBLIC_MAX_TEXT", 2000)
