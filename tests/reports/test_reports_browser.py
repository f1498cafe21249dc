"""The report pages in Debian's chromium: Chart.js draws every chart, the pickers
reload the page in another time zone, and marketing sees no conversation links."""
import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import browser, login, new_page  # noqa: F401 - fixtures
from tests.factories import UserFactory

from .test_correctness import world  # noqa: F401 - the fixture history

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
RANGE = "start=2026-11-02&end=2026-11-05"


def _screenshot(page, name):
    """docs/screenshots is refreshed only on request (CX_SCREENSHOTS=1), as the inbox's are:
    a test run leaves the work tree as it found it."""
    if os.environ.get("CX_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / name), full_page=False)


def test_service_page_draws_charts_and_switches_time_zone(live_server, new_page, world):  # noqa: F811
    supervisor = UserFactory(role="supervisor")
    page = new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, live_server.url, supervisor)
    page.goto(f"{live_server.url}/reports/service/?{RANGE}&tz=UTC")
    expect(page.get_by_role("heading", name="Service report")).to_be_visible()
    expect(page.locator("#charts canvas")).to_have_count(6)  # with handle time per work session
    page.wait_for_function("window.Chart && Object.keys(Chart.instances).length === 6")
    expect(page.locator(".kpi", has_text="First response, median")).to_contain_text("30m 00s")
    expect(page.locator(".kpi", has_text="Handle time, median")).to_contain_text("5m 00s")
    _screenshot(page, "reports-service.png")

    page.get_by_label("Time zone").select_option("Europe/Berlin")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**tz=Europe%2FBerlin**")
    expect(page.locator(".note").first).to_contain_text("days in Europe/Berlin")
    assert not errors, errors


def test_marketing_page_and_gap_without_links(live_server, new_page, world):  # noqa: F811
    marketing = UserFactory(role="marketing")
    page = new_page()
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(marketing.username)
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server.url}/reports/marketing/?{RANGE}")
    page.wait_for_function("window.Chart && Object.keys(Chart.instances).length >= 4")
    expect(page.locator("table", has_text="hashtags")).not_to_have_count(0)
    _screenshot(page, "reports-marketing.png")
    page.goto(f"{live_server.url}/reports/gap/?{RANGE}")
    expect(page.locator("a", has_text="open")).to_have_count(0)
