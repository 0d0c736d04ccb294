"""Settings for the HumanBeauty platform, driven entirely by environment variables.

- DATABASE_URL alone chooses the database (SQLite for the quick start, PostgreSQL otherwise).
- With no CELERY_BROKER_URL, Celery tasks run eagerly in-process; with one, they go to workers
  (`filesystem://`: a broker on files under var/, for the quick start's worker).
- DEBUG defaults to off; HTTPS hardening follows `HTTPS`, which defaults to "not DEBUG" so
  that production is secure by default while tests and the demo can speak plain HTTP locally.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
# Django's deploy check (security.W009) flags this default key, so production must set its own.
SECRET_KEY = os.environ.get("SECRET_KEY") or "django-insecure-dev-only-change-me"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "axes",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "core",
    "accounts",
    "curation",
    "annotation",
    "modeling",
    "rights",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "config.uploads.RequestSizeMiddleware",
    "config.middleware.RejectNulMiddleware",
    "config.middleware.NoStoreApiMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a lockout into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "config.context.nav",
            ],
            "builtins": ["core.templatetags.pages"],  # card heads, tables, form ends: every page
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'humanbeauty.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # IMMEDIATE takes the write lock when a transaction starts, so the lease logic that
    # PostgreSQL guards with row locks is serialised on SQLite instead of failing mid-way.
    # WAL lets the web process read while a worker process writes (the quick start's worker).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL;",
    }

# One cache for every process (throttle counts, debounce marks) where CACHE_URL names a Redis;
# the quick start runs in one process and keeps it in memory.
CACHE_URL = os.environ.get("CACHE_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Logins -----------------------------------------------------------------------------------
# Failed logins are counted by django-axes in the database, per account and per client, on every
# login path (config/login_guard.py); the API token endpoint is also throttled per client.
AUTHENTICATION_BACKENDS = [
    "config.login_guard.LoginGuardBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = float(os.environ.get("LOGIN_LOCKOUT_HOURS", "0.25"))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "config.login_guard.client_ip"
AXES_USERNAME_CALLABLE = "config.login_guard.client_username"  # cut to what axes can store
AXES_VERBOSE = False
# API tokens (one per login/device, revocable: accounts/) expire after this many days.
API_TOKEN_DAYS = float(os.environ.get("API_TOKEN_DAYS", "30"))
# Proxies in front of the app whose X-Forwarded-For is believed (0: the header is ignored).
PROXY_COUNT = int(os.environ.get("PROXY_COUNT", "1" if env_bool("BEHIND_PROXY", False) else "0"))

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Where the platform keeps its files (pool images, contact sheets): MEDIA_STORAGE=filesystem (the
# default, under MEDIA_ROOT) or s3 (any S3-compatible server: AWS, MinIO), so that workers on
# many machines share files without sharing a disk. The bucket stays private: no ACL is granted,
# and a URL the storage signs expires in AWS_QUERYSTRING_EXPIRE seconds; the app itself streams
# images to the users who may see them (curation.views.image_file).
def s3_storage(env: dict[str, str]) -> dict:
    """The S3 backend (django-storages) that the AWS_* variables of `env` describe."""
    if not env.get("AWS_STORAGE_BUCKET_NAME"):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("MEDIA_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME")
    endpoint = env.get("AWS_S3_ENDPOINT_URL") or None
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env["AWS_STORAGE_BUCKET_NAME"],
            "endpoint_url": endpoint,
            "access_key": env.get("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env.get("AWS_SECRET_ACCESS_KEY") or None,
            "region_name": env.get("AWS_S3_REGION_NAME") or None,
            # MinIO and other self-hosted servers answer on one host: the bucket in the path.
            "addressing_style": "path" if endpoint else None,
            "signature_version": "s3v4",
            "default_acl": None,  # the bucket's own (private) policy; never public-read
            "querystring_auth": True,
            "querystring_expire": int(env.get("AWS_QUERYSTRING_EXPIRE") or "300"),
            "file_overwrite": True,  # names are content addresses: same name, same bytes
            # An opened object is spooled to a temporary file past 16 MiB, not held in memory
            # (results files, releases' shards streamed to a download).
            "max_memory_size": 16 * 1024 * 1024,
        },
    }


MEDIA_STORAGE = os.environ.get("MEDIA_STORAGE", "filesystem").strip().lower() or "filesystem"
if MEDIA_STORAGE == "s3":
    _MEDIA_BACKEND = s3_storage(dict(os.environ))
elif MEDIA_STORAGE == "filesystem":
    _MEDIA_BACKEND = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
else:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"MEDIA_STORAGE is filesystem or s3, not {MEDIA_STORAGE!r}")
STORAGES = {
    "default": _MEDIA_BACKEND,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedStaticFilesStorage"
        )
    },
}
# Media are never served publicly: image files go through a permission-checked view.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "/media/"
# Local copies of stored files for the stages that need a file on disk (faces, CLIP, contact
# sheets) when the storage is remote: a size-bounded cache per machine (core/scratch.py), safe to
# lose at any moment (files are fetched again).
SCRATCH_DIR = Path(os.environ.get("SCRATCH_DIR", VAR_DIR / "scratch"))
SCRATCH_MAX_BYTES = int(os.environ.get("SCRATCH_MAX_BYTES", str(2 * 1024**3)))
# Model directories fetched from a remote storage: a folder per model and listing, beside the
# scratch cache (whose eviction works file by file); fetches unused for 10 minutes are pruned.
# Unset: SCRATCH_DIR + "-models" (modeling.services.registry.scratch_models_dir).
_MODEL_SCRATCH = os.environ.get("MODEL_SCRATCH_DIR")
MODEL_SCRATCH_DIR = Path(_MODEL_SCRATCH) if _MODEL_SCRATCH else None

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "rate-home"
LOGOUT_REDIRECT_URL = "login"

# --- Images -----------------------------------------------------------------------------------
# Guard against decompression bombs and oversized uploads before anything is decoded.
MAX_IMAGE_PIXELS = int(os.environ.get("MAX_IMAGE_PIXELS", str(90_000_000)))
MAX_UPLOAD_BYTES = int(os.environ.get("MAX_UPLOAD_BYTES", str(50 * 1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Sizes are checked on Content-Length and while the body streams in (config/uploads.py).
FILE_UPLOAD_HANDLERS = [
    "config.uploads.LimitedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# The CLIP filter of curation jobs: an open_clip model name and a local weights file.
CLIP_MODEL = os.environ.get("CLIP_MODEL", "ViT-B-32")
CLIP_CHECKPOINT = os.environ.get("CLIP_CHECKPOINT", "")
# Directories that imports may read from (comma-separated); anything else is refused.
# An entry `storage:PREFIX` names a folder of the media storage instead (MEDIA_STORAGE's bucket):
# an import path `storage:PREFIX/…/manifest.csv` reads the manifest and its images from there.
IMPORT_ROOTS = [
    Path(p).resolve() for p in env_list("IMPORT_ROOTS") if not p.startswith("storage:")
]
IMPORT_STORAGE_ROOTS = [
    p.removeprefix("storage:").strip("/") for p in env_list("IMPORT_ROOTS")
    if p.startswith("storage:") and p.removeprefix("storage:").strip("/")
]
# An import always runs on a worker; a request without `background` waits this long for its
# outcome before answering 202 with the import to follow (keep it under the web timeout).
IMPORT_WAIT_SECONDS = float(os.environ.get("IMPORT_WAIT_SECONDS", "10"))

# --- Models: registry, scoring, training ------------------------------------------------------
# Directories the API may register models from and read training data / CLIP files from
# (comma-separated); the CLI (`manage.py register_model`) is not limited to them.
TRAINING_RUNS_DIR = Path(os.environ.get("TRAINING_RUNS_DIR", VAR_DIR / "runs"))
_MODEL_ROOT_ENTRIES = env_list("MODEL_ROOTS", f"{VAR_DIR / 'models'},{TRAINING_RUNS_DIR}")
MODEL_ROOTS = [Path(p).resolve() for p in _MODEL_ROOT_ENTRIES if not p.startswith("storage:")]
# `storage:PREFIX` entries: folders of the media storage the API may register models from
# (a model directory `storage:PREFIX/NAME`, fetched whole by each machine that loads it).
MODEL_STORAGE_ROOTS = [
    p.removeprefix("storage:").strip("/") for p in _MODEL_ROOT_ENTRIES
    if p.startswith("storage:") and p.removeprefix("storage:").strip("/")
]
# Where releases built through the API are written (a request's `out` is a folder under it);
# `manage.py release build --out` is not limited to it.
RELEASE_ROOT = Path(os.environ.get("RELEASE_ROOT", VAR_DIR / "releases")).resolve()
# Loaded models kept per process (keyed by version and checkpoint mtime); "auto" = cuda if any.
MODEL_CACHE_SIZE = int(os.environ.get("MODEL_CACHE_SIZE", "2"))
MODEL_DEVICE = os.environ.get("MODEL_DEVICE", "auto")
SCORING_CHUNK_SIZE = int(os.environ.get("SCORING_CHUNK_SIZE", "256"))
# Loader workers that read, decode and tile images while the model scores (modeling.hae.loading).
SCORING_WORKERS = int(os.environ.get("SCORING_WORKERS", "2"))
# What a takedown does with the removed images' ratings: "aggregate" (anonymised per-project
# counts and means, no image, no rater) or "delete" (rights/services; a bad value fails the job).
TAKEDOWN_RATINGS = os.environ.get("TAKEDOWN_RATINGS", "aggregate")
# Matching takedown photos by face (rights/README.md): an ONNX model with the SFace interface,
# the cosine similarity from which two faces are one person, and how many unindexed pool images
# one match request indexes itself. Kept as text: rights.selectors.face_settings checks them.
TAKEDOWN_FACE_MODEL = os.environ.get("TAKEDOWN_FACE_MODEL", "")
TAKEDOWN_FACE_THRESHOLD = os.environ.get("TAKEDOWN_FACE_THRESHOLD", "0.363")
TAKEDOWN_FACE_INDEX_LIMIT = os.environ.get("TAKEDOWN_FACE_INDEX_LIMIT", "100")
# How often a training task reads its run's metrics.jsonl into the TrainingRun row.
TRAINING_POLL_SECONDS = float(os.environ.get("TRAINING_POLL_SECONDS", "5"))

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "config.exceptions.exception_handler",
    # Client addresses for throttles: X-Forwarded-For only behind trusted proxies.
    "NUM_PROXIES": PROXY_COUNT,
    # Strict JSON (depth, finite numbers, no NUL): config/parsers.py.
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_METADATA_CLASS": "config.metadata.Metadata",
    "DEFAULT_THROTTLE_RATES": {"login": os.environ.get("LOGIN_THROTTLE", "30/min")},
}
SPECTACULAR_SETTINGS = {
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.add_error_responses",
    ],
    "TITLE": "HumanBeauty API",
    "DESCRIPTION": "Curate, rate on the 12-dimensional standard, release and model.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Self-hosted Swagger UI: the docs page works on machines without internet access.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Operations grouped by their first path segment after /api/ (projects, jobs, releases...).
    "SCHEMA_PATH_PREFIX": r"/api/",
    # Choice sets shared by fields named "status" in several components, named once each.
    "ENUM_NAME_OVERRIDES": {
        "RaterStatusEnum": "annotation.models.RaterStatus",
        "RunStatusEnum": "modeling.models.RunStatus",
    },
}

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
# With no broker (the quick start), run each long job in a background thread of the web
# process instead of inside the request that started it: pages answer at once and show the
# job's live progress, as they do with workers.
JOBS_IN_BACKGROUND_THREAD = env_bool("JOBS_IN_BACKGROUND_THREAD", False)
CELERY_TASK_EAGER_PROPAGATES = True
# A task is acknowledged only after it ran, and re-queued if its worker dies mid-way; tasks
# are written to be idempotent so the rerun is safe.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# How long a task taken by a worker that then vanished (killed, machine lost) waits before the
# broker hands it to another worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
    # Redis looks for abandoned messages on every Nth idle poll (kombu's default, 10, means
    # about every 100 s); the crash tests, with a visibility timeout of seconds, use 1.
    "unacked_restore_throttle": int(os.environ.get("CELERY_RESTORE_THROTTLE", "10")),
}
# `filesystem://` (the quick start): a broker on files, no Redis; the web process writes task
# messages into one folder and the workers read them from it (config/celery.py).
if CELERY_BROKER_URL.startswith("filesystem:"):
    CELERY_FILESYSTEM_BROKER_DIR = Path(
        os.environ.get("CELERY_FILESYSTEM_BROKER_DIR") or VAR_DIR / "broker"
    )
    for _folder in ("queue", "control", "processed"):
        (CELERY_FILESYSTEM_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT = "config.celery:FilesystemTransport"
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        "data_folder_in": str(CELERY_FILESYSTEM_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_FILESYSTEM_BROKER_DIR / "queue"),
        "control_folder": str(CELERY_FILESYSTEM_BROKER_DIR / "control"),
        "processed_folder": str(CELERY_FILESYSTEM_BROKER_DIR / "processed"),
        "store_processed": False,
        "polling_interval": 0.25,  # how soon a worker sees a new message
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_BEAT_SCHEDULE = {
    "reclaim-expired-leases": {
        "task": "annotation.tasks.reclaim_expired_leases",
        "schedule": 60.0,
    },
    "refresh-stale-projects": {
        "task": "annotation.tasks.refresh_stale_projects",
        "schedule": 120.0,
    },
    # Long jobs whose worker vanished are resumed, or failed with the reason (core.jobs.reap).
    "reap-lost-jobs": {
        "task": "core.tasks.reap_lost_jobs",
        "schedule": 60.0,
    },
    "prune-worker-heartbeats": {
        "task": "core.tasks.prune_worker_heartbeats",
        "schedule": 3600.0,
    },
}
CELERY_ACCEPT_CONTENT = ["json"]
# Queues by resource (docs/deployment.md): a worker started with `-Q cpu` takes only CPU work, a
# GPU box runs `-Q gpu`. cpu: filter jobs and the CPU stages of their chunks (validate, hash,
# near-duplicates, terms, faces), statistics and housekeeping; gpu: the CLIP stage of a chunk,
# scoring, training; io: source imports and releases. A worker for everything passes all of
# WORKER_QUEUES.
WORKER_QUEUES = ("cpu", "gpu", "io")
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_ROUTES = {
    "curation.tasks.run_filter_job": {"queue": "cpu"},
    "curation.tasks.process_chunk": {"queue": "cpu"},  # validate, hash, terms, faces
    "curation.tasks.clip_chunk": {"queue": "gpu"},  # the CLIP stage of a chunk
    "curation.tasks.import_source_task": {"queue": "io"},
    "modeling.tasks.build_release_task": {"queue": "io"},
    "modeling.tasks.score_job": {"queue": "gpu"},
    "modeling.tasks.train_model": {"queue": "gpu"},
    "annotation.tasks.*": {"queue": "cpu"},
    "core.tasks.*": {"queue": "cpu"},
}
# How often each worker writes its WorkerHeartbeat row (core.health; the admin's Workers page and
# /api/workers/); a worker silent for three periods reads as lost.
WORKER_HEARTBEAT_SECONDS = float(os.environ.get("WORKER_HEARTBEAT_SECONDS", "30"))
# Threads OpenCV may use inside each worker process (config.celery): 1, as the processes
# themselves are the parallelism (Celery's concurrency, more workers); 0 lets OpenCV choose.
OPENCV_THREADS = int(os.environ.get("OPENCV_THREADS", "1"))
# A worker not heard from in this many days leaves the list (core.health.prune_heartbeats, hourly).
WORKER_HEARTBEAT_KEEP_DAYS = float(os.environ.get("WORKER_HEARTBEAT_KEEP_DAYS", "7"))

# --- Security ---------------------------------------------------------------------------------
HTTPS = env_bool("HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
# Probes (compose healthchecks, load balancers) speak plain HTTP to the app itself.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000")) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if PROXY_COUNT > 0:  # the proxy says which scheme the client used
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts and styles only from our own static files (no
# inline script anywhere; the API docs use drf-spectacular's split view for that reason).
# Style *attributes* stay allowed: server-drawn progress bars set their width with one.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
