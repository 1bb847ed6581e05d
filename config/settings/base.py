"""Triplane settings, read from the environment through config.env.

Development defaults are safe on a laptop; with DEBUG off the process refuses
to start on the development secret key.
"""

import base64
import hashlib
from datetime import timedelta

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config.env import BASE_DIR, DEV_SECRET_KEY, env

# TRIPLANE_ENV=production (the Docker image sets it) refuses DEBUG and the development secret.
TRIPLANE_ENV = env.str("TRIPLANE_ENV", default="development")
if TRIPLANE_ENV not in ("development", "production"):
    raise ImproperlyConfigured("TRIPLANE_ENV must be 'development' or 'production'.")
DEBUG = env.bool("DEBUG", default=TRIPLANE_ENV == "development")
if TRIPLANE_ENV == "production" and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production (TRIPLANE_ENV=production).")
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set to a private value when DEBUG is off.")

# Keys that encrypt secrets at rest (data-source passwords, LLM API keys): Fernet keys, comma-separated;
# the first encrypts, all decrypt (add a new key first, run `manage.py rotate_encryption_keys`, then drop
# the old one). Development and tests derive one from SECRET_KEY; production must set its own.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
if not FIELD_ENCRYPTION_KEYS:
    if TRIPLANE_ENV == "production":
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must be set in production (TRIPLANE_ENV=production): one or more Fernet "
            "keys, comma-separated, e.g. from "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`."
        )
    FIELD_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(
            hashlib.sha256(f"triplane-field-encryption:{SECRET_KEY}".encode()).digest()
        ).decode()
    ]

# The vendor's own host: super-admin and management portals, Django admin, API.
# Client dashboards live on <slug>.<PLATFORM_DOMAIN> or on a custom domain.
PLATFORM_DOMAIN = env.str("PLATFORM_DOMAIN", default="localhost")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[PLATFORM_DOMAIN, f".{PLATFORM_DOMAIN}", "127.0.0.1"])
# Scheme and port used to build absolute links in emails (invites, set-password).
PUBLIC_URL_SCHEME = env.str("PUBLIC_URL_SCHEME", default="http" if DEBUG else "https")
# The port in links sent by e-mail from workers (no request to read it from); empty for 80/443.
PUBLIC_URL_PORT = env.str("PUBLIC_URL_PORT", default="8000" if DEBUG else "")

# --- Applications -----------------------------------------------------------
# Shared apps live in the public schema; tenant apps get tables in every
# client schema. contenttypes and auth stay shared only, so content type ids
# are the same everywhere (tenant tables reference them across schemas).
SHARED_APPS = [
    # Before django_tenants so its migrate/migrate_schemas commands win (they keep the template migrated).
    "apps.tenancy",
    # Before django_tenants so Django's own admin templates are used (django_tenants' expect a tenant
    # object on every request; the platform host has none).
    "django.contrib.admin",
    "django_tenants",
    "apps.core",
    "apps.accounts",
    "apps.factory",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "guardian",
    "auditlog",
    "apps.api",
    "apps.portals.superadmin",
    "apps.portals.management",
    "apps.portals.dashboard",
]
TENANT_APPS = [
    "guardian",
    "auditlog",
    "apps.deployments",
    "apps.governance",
    "apps.connectors",
    "apps.audit",
    "apps.runtime",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenancy.Client"
TENANT_DOMAIN_MODEL = "tenancy.Domain"
# New client schemas are cloned from this migrated template, not migrated one by one.
TENANT_BASE_SCHEMA = "tenant_template"
TENANT_CREATION_FAKES_MIGRATIONS = True
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
ROOT_URLCONF = "config.urls_tenant"
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]

MIDDLEWARE = [
    "apps.tenancy.middleware.TenantHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    # Last, so a lockout answers before any view runs.
    "axes.middleware.AxesMiddleware",
]

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
                "apps.core.context_processors.platform",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

# --- Data stores ------------------------------------------------------------
DATABASES = {"default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/triplane")}
# django-environ picks the plain postgres engine; schemas need the tenant backend.
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "triplane",
    }
}

# --- Celery (execution plane) ----------------------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict = {
    # Expire and escalate held actions; re-queue tasks no worker holds (e.g. after a worker was killed).
    "runtime-sweep": {"task": "apps.runtime.tasks.runtime_sweep", "schedule": 60.0},
    # The per-client audit event counts the vendor sees (recounts today and yesterday; idempotent).
    "audit-counts": {"task": "apps.audit.tasks.audit_counts_aggregate", "schedule": timedelta(minutes=15)},
}

# --- Authentication and access ---------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # axes first: it refuses locked-out credentials before any other backend runs.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "apps.accounts.backends.VendorRoleBackend",
    "guardian.backends.ObjectPermissionBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:after_login"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Invitation links (one-time set-password links) stay valid for this long.
PASSWORD_RESET_TIMEOUT = int(timedelta(days=7).total_seconds())

# guardian: no anonymous user row (anonymous visitors never hold object grants).
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

# django-axes: lock an account+address pair after repeated failures.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_RESET_ON_SUCCESS = True

# --- Security headers -------------------------------------------------------
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- API --------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.api.exceptions.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Triplane API",
    "DESCRIPTION": "Control plane for governed enterprise AI agents.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Enums are named after their field by default ("ActionEnum"), which other endpoints would clash with.
    "ENUM_NAME_OVERRIDES": {"DeploymentActionEnum": "apps.api.permissions.DEPLOYMENT_ACTION_CHOICES"},
}

# --- Email ------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
# SQLite data sources name a file on this server: development only (the tests turn them on).
CONNECTORS_ALLOW_SQLITE = env.bool("CONNECTORS_ALLOW_SQLITE", default=DEBUG)
# Mail sent by agents (notify.email) and approval notices never hangs a worker.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Triplane <no-reply@triplane.local>")

# --- Internationalisation, static files -------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# In development whitenoise serves straight from the app and project static folders.
WHITENOISE_USE_FINDERS = DEBUG
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Audit of configuration changes -----------------------------------------
AUDITLOG_INCLUDE_ALL_MODELS = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
