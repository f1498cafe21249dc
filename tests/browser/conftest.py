"""Browser tests: Playwright driving Debian's chromium (never a downloaded browser).

Page flows run against pytest-django's live_server (WSGI: no websocket there, so
the page falls back to polling). The live-update test runs the real ASGI app in
a daphne process on the test database with the Redis channel layer."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Playwright's sync API keeps an event loop running in this thread; the test's own
# ORM calls are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-for-tests"  # tests.factories.UserFactory


@pytest.fixture(scope="module")
def browser():
    """Module-scoped: Playwright's sync API keeps an event loop running in this
    thread while it is open, and later tests (async_to_sync, other browser
    modules) must not find it there."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser):
    """A page in a fresh context; the test fails if the Content-Security-Policy
    blocked anything on it (chromium reports each violation on the console)."""
    contexts, blocked = [], []

    def make(width=1280, height=860):
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(8000)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None)
        return page

    yield make
    for context in contexts:
        context.close()
    assert not blocked, f"blocked by the Content-Security-Policy: {blocked}"


def login(page, base_url, user):
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login/" not in url)  # each role lands on its own page


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def asgi_server(transactional_db):
    """daphne serving cxinbox.asgi on the test database, with the Redis channel layer."""
    from django.conf import settings
    from django.db import connection

    if not settings.REDIS_URL or connection.vendor == "sqlite":
        pytest.skip("the live browser test needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    if db.get("PASSWORD"):
        url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.browser.daphne_settings",
           "CONN_MAX_AGE": "0", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                             "cxinbox.asgi:application"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("daphne exited: " + proc.stderr.read().decode()[-2000:])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    # the daphne process holds connections to the test database: they go with it
