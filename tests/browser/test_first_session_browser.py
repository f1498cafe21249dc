"""A new team's first session, as `make run` starts the product: migrate, the demo data, then the
Procfile's web, worker and beat through honcho, on the embedded defaults (SQLite, the folder
broker and channel layer) and on PostgreSQL + Redis. Each role logs in in Chromium at 1280 and
390 px: where it lands, no sideways scroll on any of its pages, a mention the worker ingests
showing up without a reload ("Live" only when it does), a reply, resolve moving on, reports.

CX_SCREENSHOTS=1 refreshes docs/screenshots/ from these pages."""
import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from playwright.sync_api import expect

from tests.processes import process_group_stop, scratch_database

from .conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCREENSHOTS = ROOT / "docs" / "screenshots"
SHOOT = bool(os.environ.get("CX_SCREENSHOTS"))
DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")
WIDTHS = (1280, 390)

# Every main page of each role (the demo users: password = username).
PAGES = {
    "agent": ["/inbox/", "/inbox/?view=mine", "/account/", "/account/tokens/"],
    "supervisor": ["/supervisor/", "/supervisor/agents/", "/supervisor/teams/", "/supervisor/reassign/",
                   "/supervisor/canned/", "/supervisor/audit/", "/inbox/", "/routing/rules/", "/routing/sla/",
                   "/routing/hours/", "/connectors/health/", "/reports/", "/reports/service/", "/reports/experience/",
                   "/reports/marketing/", "/reports/gap/"],
    "marketing": ["/reports/", "/reports/service/", "/reports/experience/", "/reports/marketing/", "/reports/gap/",
                  "/account/"],
    "admin": ["/inbox/", "/supervisor/", "/connectors/channels/", "/connectors/health/", "/reports/"],
}
# The pages docs/screenshots/ shows (CX_SCREENSHOTS=1), at both widths.
SHOTS = {("supervisor", "/supervisor/"): "supervisor-dashboard", ("supervisor", "/reports/service/"): "reports-service",
         ("supervisor", "/reports/experience/"): "reports-experience", ("marketing", "/reports/marketing/"):
         "reports-marketing", ("supervisor", "/reports/gap/"): "reports-gap", ("admin", "/connectors/health/"):
         "connectors-health", ("supervisor", "/routing/rules/"): "routing-rules"}
LANDING = {"agent": "/inbox/", "supervisor": "/supervisor/", "marketing": "/reports/", "admin": "/inbox/"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(args, env, timeout=600):
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module", params=["embedded", "services"])
def system(request, tmp_path_factory):
    """`make run` in a folder of its own: migrate, demo_setup, `honcho start` (Procfile)."""
    mode = request.param
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    tmp = tmp_path_factory.mktemp(f"first-{mode}")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "PYTEST_", "CX_TEST_", "DATABASE_", "REDIS_", "DB_POOL"))}
    port = _free_port()
    database = contextlib.ExitStack()
    env.update({"DJANGO_SETTINGS_MODULE": "cxinbox.settings.base", "DEBUG": "1", "WEB_PORT": str(port),
                "EMBEDDED_DIR": str(tmp / "embedded"), "POLL_INTERVAL_SECONDS": "3",
                "DEMO_NETWORK_FAILURE_RATE": "0", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"})
    if mode == "embedded":
        env["DATABASE_URL"] = f"sqlite:///{tmp / 'db.sqlite3'}"
    else:
        if not DATABASE_URL.startswith(("postgres://", "postgresql://")) or not REDIS_URL:
            pytest.skip("needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL); .ci/run sets them")
        env["DATABASE_URL"] = database.enter_context(scratch_database(DATABASE_URL, "first"))
        redis = urlsplit(REDIS_URL)
        env["REDIS_URL"] = urlunsplit(redis._replace(path="/15"))  # its own Redis database
        import redis as redis_client

        redis_client.Redis.from_url(env["REDIS_URL"]).flushdb()
    _run([sys.executable, "manage.py", "migrate", "--noinput"], env)
    _run([sys.executable, "manage.py", "demo_setup"], env)
    (tmp / "empty.env").write_text("")  # not the developer's .env
    log = open(tmp / "honcho.log", "w+")
    proc = subprocess.Popen([str(BIN / "honcho"), "-e", str(tmp / "empty.env"), "--no-colour", "start"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError("the system did not start:\n" + log.read()[-4000:])
                time.sleep(0.3)
        yield {"mode": mode, "base": base, "log": log}
    finally:
        process_group_stop(proc)
        log.close()
        database.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def signed_in(browser, system, role, width):
    context = browser.new_context(viewport={"width": width, "height": 860})
    context.set_default_timeout(15000)
    page = context.new_page()
    page.goto(system["base"] + "/")
    page.get_by_label("Username").fill(role)
    page.get_by_label("Password").fill(role)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    return context, page


def no_sideways_scroll(page) -> int:
    """How far the page itself scrolls sideways (0: it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def shot(page, name):
    if SHOOT:
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("role", list(PAGES))
def test_each_role_lands_on_its_work_and_every_page_fits(browser, system, role, width):
    context, page = signed_in(browser, system, role, width)
    try:
        assert urlsplit(page.url).path == LANDING[role]
        wide = {}
        for path in PAGES[role]:
            response = page.goto(system["base"] + path)
            assert response.status == 200, f"{role} {path}: {response.status}"
            page.wait_for_load_state()
            overflow = no_sideways_scroll(page)
            if overflow > 0:
                wide[path] = overflow
            if system["mode"] == "embedded" and (role, path) in SHOTS:
                shot(page, SHOTS[role, path] + ("-phone" if width < 500 else ""))
        assert not wide, f"{role} at {width} px: pages scroll sideways by {wide}"
        if role == "marketing":
            assert page.locator('nav a[href="/inbox/"]').count() == 0
            denied = page.goto(system["base"] + "/inbox/")
            assert denied.status == 403
            expect(page.get_by_role("heading", name="This page is not open to you")).to_be_visible()
            expect(page.locator('nav a[href="/reports/"]')).to_be_visible()
            shot(page, "marketing-403" + ("-phone" if width < 500 else ""))
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_an_agents_first_session_live_reply_and_resolve(browser, system, width):
    context, page = signed_in(browser, system, "agent", width)
    try:
        rows = page.locator("#conversation-list .conv")
        expect(rows.first).to_be_visible()
        # "Live" only because the worker's pushes reach this page: a mention the worker ingests
        # (beat polls the demo network every 3 s) shows up without a reload.
        expect(page.locator("#live-state")).to_have_text("Live", timeout=20000)
        # a new conversation, or a conversation's latest message that changed
        before = dict(rows.evaluate_all(
            "rows => rows.map(r => [r.dataset.id, (r.querySelector('.subject') || {}).textContent])"))
        page.evaluate("window.cxNoReload = true")
        page.wait_for_function(
            "seen => Array.from(document.querySelectorAll('#conversation-list .conv')).some(r =>"
            " seen[r.dataset.id] !== (r.querySelector('.subject') || {}).textContent)", arg=before, timeout=90000)
        assert page.evaluate("window.cxNoReload") is True  # the same page, not a reload
        if system["mode"] == "embedded":
            shot(page, "agent-inbox" + ("-phone" if width < 500 else ""))

        rows.first.locator("a").first.click()
        page.wait_for_url(re.compile(r".*/inbox/c/\d+/"))
        opened = urlsplit(page.url).path
        assert no_sideways_scroll(page) <= 0
        page.locator("#reply-text").fill("Thanks for telling us, we're on it.")
        page.locator("#send-reply").click()
        page.wait_for_load_state()
        reply = page.locator("#timeline .msg-out").last
        expect(reply).to_contain_text("we're on it")
        expect(reply.locator(".send")).to_have_text(re.compile("Sent|Queued"))
        if system["mode"] == "embedded":
            shot(page, "agent-thread" + ("-phone" if width < 500 else ""))

        page.locator("#resolve-btn").click()
        page.wait_for_load_state()
        assert urlsplit(page.url).path != opened  # moved on: the next conversation, or the list
        assert re.match(r"^/inbox/(c/\d+/)?$", urlsplit(page.url).path)
    finally:
        context.close()
