"""Connecting X in a real browser (Debian chromium): an admin opens Channels, picks X, types
the keys, tests them against the stand-in X API (tweepy, no mocks), saves, and reads the
webhook URL and the account's health; each page's content fits 1280 and 390 px."""
from pathlib import Path

import pytest
from playwright.sync_api import expect

from apps.connectors.models import ChannelAccount

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.mark.parametrize("width,height", [(1280, 860), (390, 844)])
def test_admin_connects_x_tests_it_and_sees_the_webhook_url(live_server, new_page, admin_user, twitter_api,
                                                             settings, width, height):
    settings.SITE_URL = "https://care.acme.example"
    twitter_api.bearer_tokens = {"good-bearer-token"}
    page = new_page(width=width, height=height)
    login(page, live_server.url, admin_user)

    def fits(what):
        # the page's own content (main); the top bar's links are the nav's (the lead's 390 px work)
        wide = page.evaluate("""() => [...document.querySelectorAll('main, main *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 || e.scrollWidth > e.clientWidth + 1
                         && getComputedStyle(e).overflowX === 'visible')
            .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
        assert not wide, f"{what} is wider than {width} px: {wide[:6]}"

    page.get_by_role("link", name="Channels").click()
    expect(page.get_by_role("heading", name="Channels")).to_be_visible()
    fits("the channels list")
    page.get_by_role("link", name="Connect a network").first.click()
    fits("the network chooser")
    page.get_by_role("link", name="Twitter / X").click()
    fits("the X form")
    page.get_by_label("Name").fill("Acme on X")
    page.get_by_label("Handle to watch").fill("@acme")
    page.get_by_label("Bearer token").fill("a-wrong-token")
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("[data-test-result]")).to_contain_text("refused these credentials")
    page.get_by_label("Bearer token").fill("good-bearer-token")
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("[data-test-result]")).to_contain_text("Connected to Twitter / X")
    expect(page.get_by_label("User id (optional)")).to_have_value("783214")
    fits("the X form with a result")
    page.get_by_role("button", name="Save and connect").click()
    account = ChannelAccount.objects.get(provider="twitter")
    expect(page.locator("#hook-url")).to_have_text(f"https://care.acme.example/hooks/twitter/{account.pk}/")
    expect(page.get_by_role("heading", name="Health")).to_be_visible()
    assert "good-bearer-token" not in page.content()
    fits("the account's page")
    if width == 390:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "channel-x-390.png"), full_page=True)
