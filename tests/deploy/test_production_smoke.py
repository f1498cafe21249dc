"""The production deploy, end to end: with `cxinbox.settings.production` and its
environment, `collectstatic` builds the static files, `migrate` makes a fresh
database, gunicorn serves `cxinbox.wsgi`, and over real HTTP (as the proxy would
forward it: X-Forwarded-Proto https) the login page, a login with its CSRF token,
the inbox, the API docs and /healthz answer. Every HTML page answered 500 in
production when collectstatic failed (a vendored file named a source map that was
not shipped); the test client never sees that, since it does not use the manifest.

Needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL), as `.ci/run` gives it; it
makes and drops its own database next to the test run's."""
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from tests.processes import process_group_stop, scratch_database

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not DATABASE_URL.startswith(("postgres://", "postgresql://")) or not REDIS_URL,
                       reason="needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL); .ci/run sets them"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smoke_database():
    """A database of its own, next to the run's (dropped at the end, connections and all)."""
    with scratch_database(DATABASE_URL, "smoke") as url:
        yield url


def _run(args, env, timeout=120):
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_production_deploy_serves_pages_over_http(smoke_database, tmp_path):
    port = _free_port()
    origin = f"https://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_", "CX_TEST_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "cxinbox.settings.production",
        "SECRET_KEY": "smoke-" + "k" * 44,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": smoke_database,
        "REDIS_URL": REDIS_URL,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "STATIC_ROOT": str(tmp_path / "static"),
        "LOG_LEVEL": "WARNING",
    })
    manage = [sys.executable, "manage.py"]
    _run(manage + ["collectstatic", "--noinput"], env)
    assert (tmp_path / "static" / "staticfiles.json").exists()
    _run(manage + ["migrate", "--noinput"], env)
    _run(manage + ["shell", "-c",
                   "from apps.accounts.models import User; "
                   "User.objects.create_user(username='smoke', password='smoke-pass-123', role='agent')"], env)

    log = open(tmp_path / "gunicorn.log", "w+")
    web = subprocess.Popen(
        [str(BIN / "gunicorn"), "cxinbox.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2", "--timeout", "60",
         "--forwarded-allow-ips", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 45
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert web.poll() is None and time.monotonic() < deadline, _log(log)
                time.sleep(0.2)

        # The proxy terminates TLS: it forwards the scheme, and the cookies are Secure,
        # so they are carried by hand here (requests keeps Secure cookies off http://).
        proxy = {"X-Forwarded-Proto": "https"}
        cookies: dict[str, str] = {}

        def get(path, **kw):
            r = requests.get(base + path, headers=proxy, cookies=cookies, allow_redirects=False, timeout=30, **kw)
            cookies.update(r.cookies.get_dict())
            return r

        page = get("/login/")
        assert page.status_code == 200, _log(log)
        assert "Content-Security-Policy" in page.headers
        assert page.headers["Strict-Transport-Security"].startswith("max-age=")
        for asset in set(re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)):
            assert re.search(r"\.[0-9a-f]{12}\.", asset), f"{asset} is not a hashed manifest name"
            assert get(asset).status_code == 200, asset
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)

        login = requests.post(
            base + "/login/", data={"username": "smoke", "password": "smoke-pass-123", "csrfmiddlewaretoken": token},
            headers={**proxy, "Referer": f"{origin}/login/", "Origin": origin}, cookies=cookies,
            allow_redirects=False, timeout=30,
        )
        assert login.status_code == 302, (login.status_code, login.text[:500], _log(log))
        cookies.update(login.cookies.get_dict())
        assert "sessionid" in cookies

        inbox = get("/inbox/")
        assert inbox.status_code == 200, _log(log)
        assert "cxinbox" in inbox.text and "Content-Security-Policy" in inbox.headers
        docs = get("/api/docs/")
        assert docs.status_code == 200, _log(log)
        script = re.search(r'<script src="([^"]*\?[^"]*script=[^"]*)"', docs.text).group(1).replace("&amp;", "&")
        assert get(script).status_code == 200
        assert get("/api/schema/").status_code == 200
        assert get("/api/v1/conversations/").status_code == 200

        health = requests.get(base + "/healthz", timeout=30)
        checks = health.json()["checks"]
        assert checks["database"]["ok"] and checks["redis"]["ok"], checks
        # No Celery worker runs here: that check alone may be down.
        assert health.status_code == 200 or not checks["workers"]["ok"]
    finally:
        process_group_stop(web, timeout=20)
        log.close()


def _log(log) -> str:
    log.flush()
    log.seek(0)
    return log.read()[-4000:]
