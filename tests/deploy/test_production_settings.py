"""Production settings refuse a bad environment at start, with a message that says
what to fix, instead of falling back to SQLite, failing at the first credential,
trusting a public development key or answering to `testserver`. Each case starts
a fresh interpreter the way gunicorn would (`django.setup()` with the production
settings) and reads its exit status and stderr."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "SECRET_KEY": "s" * 50,
    "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/cx_prod_settings_check",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    "ALLOWED_HOSTS": "cx.example.com",
}
DEV_FERNET = "3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def start(env_changes: dict, code: str = "import django; django.setup()", settings: str | None = "cxinbox.settings.production"):
    env = {k: v for k, v in os.environ.items()
           if k not in GOOD and k not in ("DJANGO_SETTINGS_MODULE", "DEBUG")}
    env.update(GOOD)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    if settings:
        env["DJANGO_SETTINGS_MODULE"] = settings
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_good_environment_starts_with_hsts_and_secure_cookies():
    done = start({}, code="import django; django.setup(); from django.conf import settings as s; "
                          "print(s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.DEBUG, "
                          "'csp.middleware.CSPMiddleware' in s.MIDDLEWARE)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["31536000", "True", "True", "False", "True"]


@pytest.mark.parametrize(("changes", "message"), [
    ({"DATABASE_URL": None}, "DATABASE_URL is required"),
    ({"DATABASE_URL": "sqlite:////tmp/cx.sqlite3"}, "DATABASE_URL must name a PostgreSQL database"),
    ({"FIELD_ENCRYPTION_KEYS": None}, "FIELD_ENCRYPTION_KEYS is required"),
    ({"FIELD_ENCRYPTION_KEYS": ""}, "FIELD_ENCRYPTION_KEYS is required"),
    ({"FIELD_ENCRYPTION_KEYS": "not-a-key"}, "key 1 is not a Fernet key"),
    ({"FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode() + ",short"}, "key 2 is not a Fernet key"),
    ({"FIELD_ENCRYPTION_KEYS": DEV_FERNET}, "key 1 is the development key"),
    ({"SECRET_KEY": None}, "SECRET_KEY is required"),
    ({"SECRET_KEY": "dev-insecure-secret-key-change-me"}, "SECRET_KEY is the development key"),
    ({"SECRET_KEY": "tiny"}, "shorter than 32 characters"),
    ({"REDIS_URL": None}, "REDIS_URL is required"),
    ({"ALLOWED_HOSTS": None}, "ALLOWED_HOSTS is required"),
    ({"ALLOWED_HOSTS": "cx.example.com,testserver"}, "must not list 'testserver'"),
    ({"DEBUG": "true"}, "DEBUG must not be on"),
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be json or plain"),
])
def test_bad_environment_fails_at_start_with_the_reason(changes, message):
    done = start(changes)
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr
    assert message in done.stderr, done.stderr[-2000:]


@pytest.mark.parametrize("module", ["cxinbox.wsgi", "cxinbox.asgi", "cxinbox.celery"])
def test_deploy_entry_points_default_to_production(module):
    """gunicorn/daphne/celery without DJANGO_SETTINGS_MODULE load production settings
    (and so fail without its environment) instead of the development ones."""
    done = start({"SECRET_KEY": None}, code=f"import {module}; from django.conf import settings; settings.DEBUG",
                 settings=None)
    assert done.returncode != 0
    assert "SECRET_KEY is required in production" in done.stderr, done.stderr[-2000:]
    done = start({}, code=f"import {module}; from django.conf import settings; "
                          "import os; print(os.environ['DJANGO_SETTINGS_MODULE'], settings.DEBUG)", settings=None)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["cxinbox.settings.production", "False"]
