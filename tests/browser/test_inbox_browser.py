"""The inbox in a real browser (Debian chromium through Playwright): log in, work
the list with the keyboard, open a thread, answer with a canned response, resolve;
and, on the real ASGI app with the Redis channel layer, live updates, the
"assigned to me" toast and another agent's typing, all without a reload."""
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock

import pytest
from playwright.sync_api import expect

from apps.inbox import services
from apps.inbox.models import Conversation
from apps.inbox.realtime import inbox_push
from tests.factories import ConversationFactory, MessageFactory, SocialIdentityFactory

from .conftest import login
from .data import make_inbox

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def off_loop(fn, *args, **kwargs):
    """Run a service from another thread: Playwright's event loop runs in this one,
    and the realtime push (async_to_sync) refuses to run beside it."""
    from django.db import connection

    def call():
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


@pytest.fixture
def people(agent, supervisor):
    agent.username, agent.first_name, agent.last_name, agent.signature = "alex", "Alex", "Rivera", "^AR"
    agent.save()
    supervisor.username, supervisor.first_name, supervisor.last_name = "sam", "Sam", "Lee"
    supervisor.save()
    return agent, supervisor


@pytest.fixture
def inbox(people, agent, supervisor, queue, twitter_account):
    return make_inbox(agent=agent, supervisor=supervisor, queue=queue, account=twitter_account)


def test_login_list_keyboard_thread_canned_reply_and_resolve(live_server, new_page, agent, inbox):
    page = new_page()
    login(page, live_server.url, agent)
    rows = page.locator("#conversation-list .conv")
    expect(rows).to_have_count(len(inbox))
    # sorted by priority bucket: the urgent one first
    expect(rows.first).to_contain_text("@maria_g")
    expect(page.locator('[data-count="all"]')).to_have_text(str(len(inbox)))

    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class(re.compile(r"\bselected\b"))
    page.keyboard.press("k")
    expect(rows.nth(0)).to_have_class(re.compile(r"\bselected\b"))
    following = rows.nth(1).get_attribute("data-id")  # where resolve will move on to
    page.keyboard.press("o")
    page.wait_for_url(f"**/inbox/c/{inbox[0].pk}/")
    expect(page.locator(".quoted")).to_contain_text("Our spring collection just dropped")
    expect(page.locator(".followers")).to_contain_text("18400")
    expect(page.locator("#timeline .note")).to_contain_text("refund over $200")
    expect(page.locator("#timeline")).to_contain_text("Not sent: X refused the post (429)")

    # r focuses the reply box; "/" opens the canned responses, Enter inserts the rendered one
    page.keyboard.press("r")
    expect(page.locator("#reply-text")).to_be_focused()
    page.keyboard.type("/tha")
    expect(page.locator("#canned-list")).to_be_visible()
    expect(page.locator("#canned-list").get_by_role("option")).to_have_count(1)
    page.keyboard.press("Enter")
    text = "Thanks for reaching out, María González! — Alex"
    expect(page.locator("#reply-text")).to_have_value(text)
    expect(page.locator("#reply-count")).to_have_text(f"{len(text) + 1 + 3} / 280")  # + newline + signature

    # over the network's limit: the counter says so and the button is off
    page.locator("#reply-text").fill("x" * 281)
    expect(page.locator("#reply-count")).to_have_class(re.compile("over"))
    expect(page.locator("#send-reply")).to_be_disabled()
    page.locator("#reply-text").fill(text)
    with mock.patch("apps.inbox.tasks.message_send_task.delay") as delay:
        page.locator("#send-reply").click()
        expect(page.locator(".flash")).to_contain_text("Reply queued")
    assert delay.call_count == 1
    expect(page.locator("#timeline .msg-out").last).to_contain_text(text)
    expect(page.locator("#timeline .msg-out").last).to_contain_text("Queued")

    # a focuses the assignee picker; e resolves
    page.locator("body").click(position={"x": 5, "y": 200})
    page.keyboard.press("a")
    expect(page.locator("#assignee")).to_be_focused()
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    # resolve moves on: to the conversation after it in the list the agent came from
    page.wait_for_url(f"**/inbox/c/{following}/")
    assert Conversation.objects.get(pk=inbox[0].pk).status == "resolved"


def test_reply_refused_when_the_customer_wrote_meanwhile(live_server, new_page, agent, inbox):
    page = new_page()
    login(page, live_server.url, agent)
    page.goto(f"{live_server.url}/inbox/c/{inbox[2].pk}/")
    page.locator("#reply-text").fill("Yes, you can change it in your account.")
    MessageFactory(conversation=inbox[2], text="Never mind, found it in the app!")
    page.locator("#send-reply").click()
    expect(page.locator("#reply-error")).to_contain_text("the customer sent a new message after you started")
    expect(page.locator("#reply-text")).to_have_value("Yes, you can change it in your account.")
    expect(page.locator("#timeline")).to_contain_text("Never mind, found it in the app!")


def test_composer_answers_a_dm_by_dm_and_counts_against_the_chosen_modes_limit(
        live_server, new_page, agent, queue, twitter_account, inbox):
    dm = ConversationFactory(channel_account=twitter_account, queue=queue, identity=inbox[2].identity,
                             customer=inbox[2].customer, is_public=False, status="open")
    MessageFactory(conversation=dm, kind="private", text="Here is my order number: 4471")
    page = new_page()
    login(page, live_server.url, agent)
    page.goto(f"{live_server.url}/inbox/c/{dm.pk}/")
    expect(page.get_by_label("Direct message")).to_be_checked()
    expect(page.locator("#reply-count")).to_have_text("0 / 10000")
    long = "Thanks, found it. " * 17  # 306 characters: too long for a post, fine for a DM
    page.locator("#reply-text").fill(long)
    expect(page.locator("#send-reply")).to_be_enabled()

    # switching to a public reply counts against the post limit at once
    page.get_by_label("Public reply").check()
    expect(page.locator("#reply-count")).to_have_class(re.compile("over"))
    expect(page.locator("#reply-count")).to_contain_text("/ 280")
    expect(page.locator("#send-reply")).to_be_disabled()
    page.get_by_label("Direct message").check()
    expect(page.locator("#send-reply")).to_be_enabled()
    with mock.patch("apps.inbox.tasks.message_send_task.delay"):
        page.locator("#send-reply").click()
        expect(page.locator(".flash")).to_contain_text("Reply queued")
    out = dm.messages.get(direction="out")
    assert out.kind == "private" and out.text.startswith("Thanks, found it.")

    # a public mention starts as a public reply
    page.goto(f"{live_server.url}/inbox/c/{inbox[2].pk}/")
    expect(page.get_by_label("Public reply")).to_be_checked()
    expect(page.locator("#reply-count")).to_have_text("0 / 280")


def test_phone_width_list_and_thread_fit(live_server, new_page, agent, inbox):
    page = new_page(width=390, height=844)
    login(page, live_server.url, agent)
    expect(page.locator("#conversation-list .conv").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator("#conversation-list .conv a").first.click()
    expect(page.locator("#reply-text")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


UNLABELLED_JS = """() => Array.from(document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button, a[href]')).filter(el => {
  if (el.closest('[hidden]') || el.getClientRects().length === 0) return false;
  const named = (el.labels && el.labels.length) || el.getAttribute('aria-label')
    || el.getAttribute('aria-labelledby') || el.getAttribute('title')
    || ((el.tagName === 'BUTTON' || el.tagName === 'A') && el.textContent.trim());
  return !named;
}).map(el => el.outerHTML.slice(0, 120))"""


def _tab_focus_outlines(page, presses=12) -> list[tuple[str, str]]:
    """Tabs through the page; for each focused control, its outline style and width."""
    seen = []
    page.locator("body").click(position={"x": 2, "y": 2})
    for _ in range(presses):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("""() => { const el = document.activeElement, cs = getComputedStyle(el);
            return [el.tagName + '#' + (el.id || el.name || ''), cs.outlineStyle + ' ' + cs.outlineWidth]; }"""))
    return seen


@pytest.mark.parametrize("width,height", [(1280, 860), (390, 844)])
def test_controls_are_labelled_focus_is_visible_and_the_pages_fit(live_server, new_page, agent, inbox, width, height):
    page = new_page(width=width, height=height)
    login(page, live_server.url, agent)
    for url in (f"{live_server.url}/inbox/", f"{live_server.url}/inbox/c/{inbox[0].pk}/"):
        page.goto(url)
        expect(page.locator("main")).to_be_visible()
        assert page.evaluate(UNLABELLED_JS) == [], f"controls without a label at {width} px on {url}"
        assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{url} scrolls sideways"
        for where, outline in _tab_focus_outlines(page):
            assert not outline.startswith("none") and not outline.endswith(" 0px"), (
                f"no visible focus on {where} at {width} px on {url}: {outline}")


def test_live_updates_toast_and_typing_over_the_redis_channel_layer(asgi_server, new_page, people, agent, supervisor,
                                                                    queue, twitter_account):
    inbox = off_loop(make_inbox, agent=agent, supervisor=supervisor, queue=queue, account=twitter_account)
    page = new_page()
    login(page, asgi_server, agent)
    expect(page.locator("#live-state")).to_have_text("Live")
    page.evaluate("window.__noReload = true")
    rows = page.locator("#conversation-list .conv")
    expect(rows).to_have_count(len(inbox))

    # a new mention lands (as ingest does it: rows committed, then the push)
    identity = SocialIdentityFactory(handle="brand_new_customer", display_name="Newcomer")
    fresh = ConversationFactory(channel_account=twitter_account, queue=queue, identity=identity,
                                customer=identity.customer, subject="@acme hello from a brand new customer",
                                priority_bucket=0)
    MessageFactory(conversation=fresh, text=fresh.subject)
    off_loop(inbox_push, "message_received", fresh.pk)
    expect(page.locator(f'#conversation-list .conv[data-id="{fresh.pk}"]')).to_contain_text("@brand_new_customer")
    expect(page.locator('[data-count="all"]')).to_have_text(str(len(inbox) + 1))

    # the supervisor assigns it to the agent: a toast, and the row says so
    off_loop(services.conversation_assign, conversation=fresh, assignee=agent, actor=supervisor, reason="you know them")
    expect(page.locator("#toasts .toast", has_text="@brand_new_customer")).to_have_text(
        re.compile(r"^Sam Lee assigned you @brand_new_customer"))
    expect(page.locator(f'#conversation-list .conv[data-id="{fresh.pk}"]')).to_contain_text("Alex")

    # a status change shows up too
    off_loop(services.conversation_status_set, conversation=inbox[1], status="pending", actor=supervisor)
    expect(page.locator(f'#conversation-list .conv[data-id="{inbox[1].pk}"] .badge.status')).to_have_text("Pending")

    # the supervisor opens the thread and types: the agent's list shows it
    other = new_page()
    login(other, asgi_server, supervisor)
    other.goto(f"{asgi_server}/inbox/c/{fresh.pk}/")
    expect(other.locator("#live-state")).to_have_text("Live")
    other.locator("#reply-text").type("Hi there")
    expect(page.locator(f'[data-presence="{fresh.pk}"]')).to_contain_text("Sam Lee typing…")

    # the agent opens it too: each sees the other; a customer message arrives live in the thread
    page.goto(f"{asgi_server}/inbox/c/{fresh.pk}/")
    expect(page.locator("#viewers")).to_contain_text("Sam Lee is")
    expect(other.locator("#viewers")).to_contain_text("Alex Rivera is viewing")
    other.evaluate("window.__noReload = true")
    MessageFactory(conversation=fresh, text="Are you still there?")
    off_loop(inbox_push, "message_received", fresh.pk)
    expect(other.locator("#timeline")).to_contain_text("Are you still there?")
    expect(other.locator("#moved-on")).to_be_visible()  # the supervisor's draft predates it
    assert other.evaluate("window.__noReload") is True


@pytest.mark.skipif(not os.environ.get("CX_SCREENSHOTS"), reason="set CX_SCREENSHOTS=1 to refresh docs/screenshots")
def test_screenshots(asgi_server, new_page, people, agent, supervisor, queue, twitter_account):
    inbox = off_loop(make_inbox, agent=agent, supervisor=supervisor, queue=queue, account=twitter_account)
    base = asgi_server
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = new_page(1280, 860)
    login(page, base, agent)
    expect(page.locator("#live-state")).to_have_text("Live")
    expect(page.locator("#conversation-list .conv")).to_have_count(len(inbox))
    other = new_page()
    login(other, base, supervisor)
    other.goto(f"{base}/inbox/c/{inbox[0].pk}/")
    other.locator("#reply-text").type("Approved")
    expect(page.locator(f'[data-presence="{inbox[0].pk}"]')).to_contain_text("typing")
    page.screenshot(path=str(SCREENSHOTS / "inbox-list.png"))
    page.goto(f"{base}/inbox/c/{inbox[0].pk}/")
    expect(page.locator("#viewers")).to_contain_text("Sam Lee")
    page.locator("#reply-text").type("/")
    expect(page.locator("#canned-list")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "inbox-thread.png"), full_page=True)
    phone = new_page(390, 844)
    login(phone, base, agent)
    phone.screenshot(path=str(SCREENSHOTS / "inbox-list-phone.png"))
    phone.goto(f"{base}/inbox/c/{inbox[0].pk}/")
    phone.screenshot(path=str(SCREENSHOTS / "inbox-thread-phone.png"))
