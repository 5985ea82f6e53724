"""Settings, read from the environment (see ``.env.example``).

Embedded default (nothing set): SQLite under ``var/``, local-memory cache, Celery tasks run in-process.
``DATABASE_URL`` switches to PostgreSQL (psycopg 3); ``REDIS_URL`` makes Redis the Celery broker and result
backend, the cache, the throttle store and the streaming channel.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import environ

from apps.core.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG: bool = env.bool("DEBUG", default=False)


def _secret_key() -> str:
    if key := env.str("SECRET_KEY", default=""):
        return key
    # No key configured: keep a random one on disk so sessions survive restarts without shipping a default.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served as our own static files (works air-gapped)
    "apps.core",
    "apps.accounts",
    "apps.usage",
    "apps.chat",
    "apps.completions",
    "apps.text",
    "apps.finetune",
    "apps.plugins",
    "apps.embeddings",
    "apps.rerank",
    "apps.search",
    "apps.batches",
    "apps.images",
    "django_prometheus",
    "apps.metrics",
]

MIDDLEWARE = [
    "apps.core.access.RequestIdMiddleware",  # first: the id and the access line cover every response
    "django_prometheus.middleware.PrometheusBeforeMiddleware",  # requests by view and status, latency (/metrics)
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.accounts.middleware.RateLimitHeadersMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "tigerplatform.urls"
WSGI_APPLICATION = "tigerplatform.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the web threads and in-process tasks share the file without "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not Django's shared in-memory default, so live-server threads get connections of their own.
    # One per test process, so parallel runs cannot share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL: str = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="tp"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tp"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=VAR_DIR / "static")
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request otherwise
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
MODELS_DIR = env.path("MODELS_DIR", default=VAR_DIR / "models")
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Shared storage for hosts that share no disk (README "Storage and growing past one machine"): uploads, fine-tuned
# weights and plugin indexes go to an S3-compatible bucket, and a host that needs a local file copies it into
# STORAGE_CACHE_DIR. Default: local files under MEDIA_ROOT, as on one machine.
AWS_STORAGE_BUCKET_NAME: str = env.str("AWS_STORAGE_BUCKET_NAME", default="")
STORAGE_BACKEND: str = env.str("STORAGE_BACKEND", default="s3" if AWS_STORAGE_BUCKET_NAME else "local")
STORAGE_CACHE_DIR = env.path("STORAGE_CACHE_DIR", default=VAR_DIR / "storage-cache")
# The most that cache may hold on this host (0: no bound); past it, each fetch drops the least recently used copies.
STORAGE_CACHE_MAX_BYTES: int = env.int("STORAGE_CACHE_MAX_BYTES", default=20 * 1024**3)
if STORAGE_BACKEND == "s3":
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,  # MinIO: http://minio:9000
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            # Unset: boto3's own chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, an instance role, ...).
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            "location": env.str("AWS_LOCATION", default=""),
            "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="") or None,
            "file_overwrite": False,  # an upload under a taken name gets a new name, as on local disk
            "default_acl": None,
            "querystring_auth": True,
        },
    }
elif STORAGE_BACKEND != "local":
    raise ValueError(f"STORAGE_BACKEND must be 'local' or 's3', not {STORAGE_BACKEND!r}")
# Uploads stream to disk past this size instead of being held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=20 * 1024 * 1024)

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", False) else None

# --- API ---------------------------------------------------------------------------------------------
DEFAULT_RATE_LIMIT_PER_MINUTE: int = env.int("DEFAULT_RATE_LIMIT_PER_MINUTE", default=600)
# Shared by all of an account's keys, unless set on the account (admin: Users → account limits); 0: none.
ACCOUNT_RATE_LIMIT_PER_MINUTE: int = env.int("ACCOUNT_RATE_LIMIT_PER_MINUTE", default=0)
API_KEY_LAST_USED_RESOLUTION_S: int = 60
# Verified keys are cached per process; revocation reaches every process at once through a shared epoch.
API_KEY_CACHE_SECONDS: int = env.int("API_KEY_CACHE_SECONDS", default=300)
API_KEY_EPOCH_FILE = env.path("API_KEY_EPOCH_FILE", default=VAR_DIR / "apikeys.epoch")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.accounts.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["apps.accounts.throttling.ApiKeyRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "EXCEPTION_HANDLER": "apps.core.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.ContractSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "TigerPlatform API",
    "DESCRIPTION": "Self-hostable LLM platform: TigerBot-style native API and an OpenAI-compatible /v1 API.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets that several fields share get one name each, instead of a hash-suffixed one per collision.
    "ENUM_NAME_OVERRIDES": {
        "ListObjectEnum": ["list"],
        "ApiKeyObjectEnum": ["api_key"],
        "Pdf2TextObjectEnum": ["pdf2text"],
        # The ``object`` of a job and of its deletion object: named as before the deletion objects came.
        "SummarizationOutputObjectEnum": ["summarization"],
        "ImageJobObjectEnum": ["image.generation"],
        "FileObjectObjectEnum": ["file"],
        "FunctionTypeEnum": ["function"],
        "JobStatusEnum": "apps.core.job_states.JobStatus",
        "DocumentStatusEnum": "apps.plugins.models.Document.Status",
        "PluginStatusEnum": "apps.plugins.models.Plugin.Status",
        "FineTuningJobStatusEnum": ["validating_files", "queued", "running", "succeeded", "failed", "cancelled"],
        "TrainingMethodEnum": ["qlora", "lora", "full"],
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Swagger UI would otherwise load a validator badge from validator.swagger.io (and send it the schema URL).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.schema.document_errors",
        "apps.core.schema.pydantic_to_openapi30",
    ],
}

# --- Chat model sources and augmentation (apps/chat/registry.py) -----------------------------------------
# Asked in order, after the registered model endpoints, to resolve, list and delete a caller's models.
CHAT_MODEL_SOURCES: list[str] = ["apps.finetune.model_source.fine_tuned_models"]
# What answers `internet: true` on a chat ("" turns search-augmented chat off).
CHAT_SEARCH_AUGMENTER: str = "apps.search.augment.augment_chat_with_search"

# --- Metrics (apps/metrics, README "Metrics") ------------------------------------------------------
# GET /metrics answers requests from these networks, and any request bearing METRICS_TOKEN.
METRICS_TOKEN: str = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_CIDRS: list[str] = env.list("METRICS_ALLOWED_CIDRS", default=["127.0.0.1/32", "::1/128"])
# A Celery worker serves its own metrics on this port (0: off), for hosts whose processes the web cannot see.
METRICS_PORT: int = env.int("METRICS_PORT", default=0)

# --- Celery ------------------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"  # with a host: kombu warns on every connection without one
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
# Without a broker the same task code runs in-process, synchronously: the embedded default.
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_TRACK_STARTED = True
CELERY_RESULT_EXPIRES = 24 * 3600
# Longest training job we allow, plus slack: an unacked task is not redelivered while it is still running.
CELERY_LONGEST_TASK_S: int = env.int("CELERY_LONGEST_TASK_S", default=48 * 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_LONGEST_TASK_S + 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Routing is by task name, so moving a task to another queue is a settings change, not a code change.
CELERY_TASK_ROUTES = {
    "core.*": {"queue": "default"},
    "usage.*": {"queue": "default"},
    "chat.*": {"queue": "serve"},
    "embeddings.*": {"queue": "serve"},
    "rerank.*": {"queue": "serve"},
    "images.maintenance.*": {"queue": "default"},
    "images.*": {"queue": "serve"},
    "summarization.*": {"queue": "serve"},
    "plugins.maintenance.*": {"queue": "default"},
    "plugins.*": {"queue": "ingest"},
    "text.*": {"queue": "ingest"},
    "finetune.maintenance.*": {"queue": "default"},
    "finetune.*": {"queue": "train"},
    "batches.maintenance.*": {"queue": "default"},
    "batches.*": {"queue": "batch"},
}
# (soft, hard) time limits per queue, applied to every task routed there (tigerplatform/celery.py).
CELERY_QUEUE_TIME_LIMITS: dict[str, tuple[int, int]] = {
    "default": (120, 180),
    "ingest": (1800, 1900),
    "serve": (600, 660),
    "train": (CELERY_LONGEST_TASK_S, CELERY_LONGEST_TASK_S + 600),
    # A batch runs for at most its 24 h completion window (then it expires), plus its finalizing.
    "batch": (25 * 3600, 25 * 3600 + 600),
}

# One JSON object per line by default (LOG_FORMAT=plain: lines for people), each with the request id it ran for.
LOG_FORMAT: str = env.str("LOG_FORMAT", default="json")
if LOG_FORMAT not in ("json", "plain"):
    raise ValueError(f"LOG_FORMAT must be 'json' or 'plain', not {LOG_FORMAT!r}")
LOGGING = logging_config(
    log_format=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"), quiet_task_trace=not REDIS_URL
)

# Optional error tracking (apps/core/sentry.py): nothing is imported or sent unless SENTRY_DSN is set.
SENTRY_DSN: str = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    from apps.core.sentry import init_sentry

    init_sentry(
        dsn=SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default="production"),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
    )

# --- Serving -----------------------------------------------------------------------------------------
CHAT_TASK_TIMEOUT_S: int = env.int("CHAT_TASK_TIMEOUT_S", default=600)
# The first chunk may wait for a model load; after that, silence means the worker is gone.
CHAT_STREAM_FIRST_TIMEOUT_S: int = env.int("CHAT_STREAM_FIRST_TIMEOUT_S", default=300)
CHAT_STREAM_IDLE_TIMEOUT_S: int = env.int("CHAT_STREAM_IDLE_TIMEOUT_S", default=60)
# A serve task nobody has taken after this long is a 503 (apps/core/serve_liveness.py): no_serving_worker when no
# serve worker is alive, model_overloaded when every thread of the alive ones is busy (a worker with a free thread
# takes a task at once, its engine queueing on its own).
SERVE_CLAIM_TIMEOUT_S: float = env.float("SERVE_CLAIM_TIMEOUT_S", default=30.0)
# Where a vLLM that serves fine-tuned adapters mounts FINETUNE_DIR (empty: the same path as here).
VLLM_ADAPTER_ROOT: str = env.str("VLLM_ADAPTER_ROOT", default="")
# An SSE comment this often while a stream waits for its first event, so idle-timeout proxies keep it open.
SSE_KEEPALIVE_S: float = env.float("SSE_KEEPALIVE_S", default=10.0)
# How long an upstream /rerank server (TEI, vLLM, Jina, Cohere) may take to answer.
RERANK_TIMEOUT_S: float = env.float("RERANK_TIMEOUT_S", default=30.0)
# A JSON list of model endpoints loaded (upserted) by `make run` (see `manage.py load_models`).
MODELS_CONFIG = env.str("MODELS_CONFIG", default="")

# --- pdf2text and summarization (apps/text) -----------------------------------------------------------
PDF2TEXT_MAX_BYTES: int = env.int("PDF2TEXT_MAX_BYTES", default=50 * 1024 * 1024)
PDF2TEXT_MAX_PAGES: int = env.int("PDF2TEXT_MAX_PAGES", default=2000)
# Limits of the extraction child process (workers/pdf), per document; the upload-time page count gets its own.
PDF2TEXT_TIMEOUT_S: int = env.int("PDF2TEXT_TIMEOUT_S", default=300)
PDF2TEXT_MEMORY_MB: int = env.int("PDF2TEXT_MEMORY_MB", default=1024)
PDF2TEXT_INSPECT_TIMEOUT_S: int = env.int("PDF2TEXT_INSPECT_TIMEOUT_S", default=15)
SUMMARIZATION_MAX_BYTES: int = env.int("SUMMARIZATION_MAX_BYTES", default=50 * 1024 * 1024)
SUMMARIZATION_MAX_INPUT_CHARS: int = env.int("SUMMARIZATION_MAX_INPUT_CHARS", default=1_000_000)
SUMMARIZATION_TIME_LIMIT_S: int = env.int("SUMMARIZATION_TIME_LIMIT_S", default=3600)
# A running summary reports after every model call; silence this long means its worker is gone.
SUMMARIZATION_HEARTBEAT_STALE_S: int = env.int("SUMMARIZATION_HEARTBEAT_STALE_S", default=900)
TEXT_STALE_MARGIN_S: int = 120
TEXT_MAX_WAIT_S: int = 30
TEXT_SWEEP_INTERVAL_S: int = 300
# Finished pdf2text, summarization and image jobs (rows, uploads, images) are deleted this many days after they
# ended, by an hourly sweep; 0 keeps them until their owners delete them.
JOB_RETENTION_DAYS: float = env.float("JOB_RETENTION_DAYS", default=0)
JOB_RETENTION_MODELS = ["text.Pdf2TextJob", "text.SummarizationJob", "images.ImageJob"]

# --- Text-to-image (/v1/images/generations) ----------------------------------------------------------
IMAGES_SIZES: list[str] = env.list(
    "IMAGES_SIZES",
    default=[
        "64x64",
        "128x128",
        "256x256",
        "512x512",
        "768x768",
        "1024x1024",
        "1024x1536",
        "1536x1024",
        "1024x1792",
        "1792x1024",
    ],
)
IMAGES_DEFAULT_SIZE: str = env.str("IMAGES_DEFAULT_SIZE", default="512x512")  # for size "auto" or none
IMAGES_MAX_N: int = env.int("IMAGES_MAX_N", default=4)
IMAGES_MAX_PROMPT_CHARS: int = env.int("IMAGES_MAX_PROMPT_CHARS", default=4000)
IMAGES_MAX_STEPS: int = env.int("IMAGES_MAX_STEPS", default=150)
# A request waits this long for its images, then answers 202 with a job to poll (GET /v1/images/generations/{id}).
IMAGES_WAIT_S: float = env.float("IMAGES_WAIT_S", default=60.0)
IMAGES_TIME_LIMIT_S: int = env.int("IMAGES_TIME_LIMIT_S", default=1800)
IMAGES_HEARTBEAT_STALE_S: int = env.int("IMAGES_HEARTBEAT_STALE_S", default=600)
IMAGES_UPSTREAM_TIMEOUT_S: float = env.float("IMAGES_UPSTREAM_TIMEOUT_S", default=300.0)

# --- Fine-tuning -------------------------------------------------------------------------------------
FINETUNE_DIR = env.path("FINETUNE_DIR", default=Path(MODELS_DIR) / "finetunes")
FINETUNE_MAX_UPLOAD_BYTES: int = env.int("FINETUNE_MAX_UPLOAD_BYTES", default=512 * 1024 * 1024)
FINETUNE_JOB_TIMEOUT_S: int = env.int("FINETUNE_JOB_TIMEOUT_S", default=CELERY_LONGEST_TASK_S)
# A running job without a heartbeat for this long lost its worker (the launcher beats every 10 s).
FINETUNE_STALE_AFTER_S: int = env.int("FINETUNE_STALE_AFTER_S", default=300)

CELERY_BEAT_SCHEDULE = {
    "finetune-fail-stale-jobs": {"task": "finetune.maintenance.fail_stale_jobs", "schedule": 60.0},
    "batches-resume-stale": {"task": "batches.maintenance.resume_stale", "schedule": 60.0},
    "plugins-resume-dense-builds": {"task": "plugins.maintenance.resume_dense_builds", "schedule": 60.0},
    # pdf2text, summarization and image jobs whose worker vanished (only this sweep ends them).
    "text-fail-stale-jobs": {"task": "text.maintenance.fail_stale_jobs", "schedule": float(TEXT_SWEEP_INTERVAL_S)},
    "images-fail-stale-jobs": {"task": "images.maintenance.fail_stale_jobs", "schedule": float(TEXT_SWEEP_INTERVAL_S)},
    # Finished one-off jobs past JOB_RETENTION_DAYS.
    "core-delete-expired-jobs": {"task": "core.maintenance.delete_expired_jobs", "schedule": 3600.0},
    # Ingest runs a killed worker left running (apps/plugins/recovery.py).
    "plugins-resume-ingest-runs": {"task": "plugins.maintenance.resume_ingest_runs", "schedule": 60.0},
}
# A long document's pages are shared out between this many extraction processes at once, PDF2TEXT_PAGES_PER_CHILD
# pages or more each (1 = one process per document).
PDF2TEXT_MAX_CHILDREN: int = env.int("PDF2TEXT_MAX_CHILDREN", default=2)
PDF2TEXT_PAGES_PER_CHILD: int = env.int("PDF2TEXT_PAGES_PER_CHILD", default=10)

# --- Search ------------------------------------------------------------------------------------------
SEARXNG_URL: str = env.str("SEARXNG_URL", default="")  # e.g. http://searxng:8080
SEARCH_LOCAL_PLUGIN: str = env.str("SEARCH_LOCAL_PLUGIN", default="wiki")
SEARCH_TIMEOUT_S: float = env.float("SEARCH_TIMEOUT_S", default=5.0)
SEARCH_BREAKER_THRESHOLD: int = env.int("SEARCH_BREAKER_THRESHOLD", default=3)
SEARCH_BREAKER_COOLDOWN_S: int = env.int("SEARCH_BREAKER_COOLDOWN_S", default=30)

# --- Rethink plugins (apps/plugins) -------------------------------------------------------------------
PLUGINS_MAX_UPLOAD_BYTES: int = env.int("PLUGINS_MAX_UPLOAD_BYTES", default=20 * 1024 * 1024)
PLUGINS_MAX_FILES_PER_UPLOAD: int = env.int("PLUGINS_MAX_FILES_PER_UPLOAD", default=20)
# Documents chunked and saved per index write (progress is reported per batch).
PLUGINS_INGEST_BATCH: int = env.int("PLUGINS_INGEST_BATCH", default=128)
# The dense side is embedded after the sparse one, PLUGINS_EMBED_BATCH chunks per engine call, in slices of
# about PLUGINS_DENSE_SLICE_S seconds, each committed (a crash loses one slice at most) before the next is queued.
PLUGINS_EMBED_BATCH: int = env.int("PLUGINS_EMBED_BATCH", default=128)
PLUGINS_DENSE_SLICE_S: float = env.float("PLUGINS_DENSE_SLICE_S", default=300.0)

# --- Batch API (apps/batches) -------------------------------------------------------------------------
# Lines of one batch in flight at once: a batch takes this many of the engine's SERVE_MAX_PENDING slots at most,
# so live requests keep being answered while it runs.
BATCH_CONCURRENCY: int = env.int("BATCH_CONCURRENCY", default=4)
BATCH_MAX_UPLOAD_BYTES: int = env.int("BATCH_MAX_UPLOAD_BYTES", default=200 * 1024 * 1024)
BATCH_MAX_LINES: int = env.int("BATCH_MAX_LINES", default=50_000)
# A running batch beats every second; silence this long means its worker died, and the batch is resumed.
BATCH_STALE_AFTER_S: int = env.int("BATCH_STALE_AFTER_S", default=120)
BATCH_MAX_ATTEMPTS: int = env.int("BATCH_MAX_ATTEMPTS", default=3)
# How long a line keeps retrying while the engine answers 503 model_overloaded before that is its answer.
BATCH_OVERLOAD_MAX_WAIT_S: int = env.int("BATCH_OVERLOAD_MAX_WAIT_S", default=600)
