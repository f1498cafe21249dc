"""A minimal Django project hosting django-helpdesk (the peer), run from its own
venv (bench/peer/setup.sh), never from the project's requirements."""
import os

SECRET_KEY = "bench-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
INSTALLED_APPS = [
    "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions", "django.contrib.sites",
    "django.contrib.admin", "django.contrib.humanize", "django.contrib.messages", "django.contrib.staticfiles",
    "rest_framework", "helpdesk",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware", "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware", "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "bench.peer.urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [], "APP_DIRS": True,
              "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                                 "django.contrib.auth.context_processors.auth",
                                                 "django.contrib.messages.context_processors.messages"]}}]
_db = os.environ.get("PEER_DB", "cx_bench_helpdesk")
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": _db, "USER": "postgres",
                         "HOST": "127.0.0.1", "PORT": "5432", "CONN_MAX_AGE": 60}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SITE_ID = 1
USE_TZ = True
STATIC_URL = "/static/"
LOGIN_URL = "/helpdesk/login/"
HELPDESK_TEAMS_MODE_ENABLED = False

