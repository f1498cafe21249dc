"""The report pages in Debian's chromium: cards and server-drawn charts first, tables after,
the pickers reload the page in another time zone, every page fits a 390 px phone without
sideways scrolling (wide tables scroll in their own box), and marketing sees no links."""
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
# The report's own content (the top bar is the site's, and fitted apart): every element of
# <main> ends within the screen unless it sits in a box that scrolls by itself.
OVERFLOWING = """() => [...document.querySelectorAll('main *')].filter(el => {
  const r = el.getBoundingClientRect();
  if (!r.width || r.right <= window.innerWidth + 1) return false;
  for (let p = el.parentElement; p; p = p.parentElement) if (getComputedStyle(p).overflowX === 'auto') return false;
  return true;
}).map(el => el.tagName + '.' + el.className)"""


def _screenshot(page, name, full_page=False):
    """docs/screenshots is refreshed only on request (CX_SCREENSHOTS=1), as the inbox's are:
    a test run leaves the work tree as it found it."""
    if os.environ.get("CX_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / name), full_page=full_page)


def _marketing_login(page, base_url):
    marketing = UserFactory(role="marketing")
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(marketing.username)
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def test_service_page_leads_with_cards_and_charts_and_switches_time_zone(live_server, new_page, world):  # noqa: F811
    supervisor = UserFactory(role="supervisor")
    page = new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, live_server.url, supervisor)
    page.goto(f"{live_server.url}/reports/service/?{RANGE}&tz=UTC")
    expect(page.get_by_role("heading", name="Service report")).to_be_visible()
    expect(page.locator(".chart svg")).to_have_count(3)
    expect(page.locator(".kpi", has_text="First response time (median)")).to_contain_text("30 min")
    expect(page.locator(".kpi", has_text="Handle time per work session (median)")).to_contain_text("5 min")
    # the cards come before the first table
    assert page.locator(".kpis").bounding_box()["y"] < page.locator(".report-table").first.bounding_box()["y"]
    _screenshot(page, "reports-service.png")

    page.get_by_label("Time zone").select_option("Europe/Berlin")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**tz=Europe%2FBerlin**")
    expect(page.locator("#period")).to_contain_text("days in Europe/Berlin")
    assert not errors, errors


@pytest.mark.parametrize("name", ["service", "experience", "marketing", "gap"])
def test_each_report_fits_a_phone_with_every_table_open(live_server, new_page, world, name):  # noqa: F811
    page = new_page(width=390, height=844)
    login(page, live_server.url, UserFactory(role="supervisor"))
    page.goto(f"{live_server.url}/reports/{name}/?{RANGE}")
    for summary in page.locator("details > summary").all():  # "More tables", "All columns", definitions
        summary.click()
    assert page.evaluate(OVERFLOWING) == []
    assert page.evaluate("document.querySelector('main').scrollWidth") <= 390
    _screenshot(page, f"reports-{name}-390.png")


def test_marketing_page_tells_the_story_first_and_gap_has_no_links(live_server, new_page, world):  # noqa: F811
    page = new_page()
    _marketing_login(page, live_server.url)
    page.goto(f"{live_server.url}/reports/marketing/?{RANGE}")
    expect(page.locator(".kpi").first).to_contain_text("Mentions")
    expect(page.locator(".highlight.positive")).to_contain_text("praise")
    expect(page.locator(".highlight.negative")).to_contain_text("billing")
    # the secondary tables are folded: the page is a few screens, not fourteen tables
    expect(page.locator("details.more-tables")).not_to_have_attribute("open", "")
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 3000, height
    _screenshot(page, "reports-marketing.png", full_page=True)
    page.goto(f"{live_server.url}/reports/gap/?{RANGE}")
    expect(page.locator("a", has_text="open")).to_have_count(0)
