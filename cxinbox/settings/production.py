"""Production: every secret and service comes from the environment, checked as the
settings load, so a bad deploy stops at start with a clear message instead of
serving from SQLite, failing at the first credential, or trusting a development key."""
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DEV_FIELD_ENCRYPTION_KEY, DEV_SECRET_KEY, env, logging_config


def _required(name: str) -> str:
    value = env.str(name, default="").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} is required in production (cxinbox.settings.production)")
    return value


DEBUG = False
if env.bool("DEBUG", default=False):
    raise ImproperlyConfigured("DEBUG must not be on in production")

SECRET_KEY = _required("SECRET_KEY")
if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 32:
    raise ImproperlyConfigured(
        "SECRET_KEY is the development key or shorter than 32 characters; generate one with "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`"
    )

FIELD_ENCRYPTION_KEYS = [k.strip() for k in _required("FIELD_ENCRYPTION_KEYS").split(",") if k.strip()]
for _position, _key in enumerate(FIELD_ENCRYPTION_KEYS, 1):
    try:
        Fernet(_key)
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            f"FIELD_ENCRYPTION_KEYS: key {_position} is not a Fernet key (urlsafe base64 of 32 bytes); "
            "generate one with `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
        ) from None
    if _key == DEV_FIELD_ENCRYPTION_KEY:
        raise ImproperlyConfigured(
            f"FIELD_ENCRYPTION_KEYS: key {_position} is the development key, which is public; generate your own"
        )
if not FIELD_ENCRYPTION_KEYS:
    raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is required in production (cxinbox.settings.production)")

_required("DATABASE_URL")
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":  # noqa: F405
    raise ImproperlyConfigured(
        f"DATABASE_URL must name a PostgreSQL database in production (got {DATABASES['default']['ENGINE']})"  # noqa: F405
    )

if not REDIS_URL:  # noqa: F405
    raise ImproperlyConfigured("REDIS_URL is required in production (cxinbox.settings.production)")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
if not [h for h in ALLOWED_HOSTS if h.strip()]:
    raise ImproperlyConfigured("ALLOWED_HOSTS is required in production: the host name(s) the site is served as")
if "testserver" in ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must not list 'testserver' (Django's test client host) in production")

SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
# HSTS on every HTTPS response (request.is_secure(): the proxy's X-Forwarded-Proto).
# A year by default; set HSTS_SECONDS=300 for a first try of a new domain.
SECURE_HSTS_SECONDS = env.int("HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("HSTS_PRELOAD", default=False)
# The proxy usually redirects http to https; set this when it does not.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# One JSON object a line, with the request id (docs/operations.md, "Logs"); LOG_FORMAT=plain to read by eye.
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOGGING = logging_config(LOG_FORMAT)
