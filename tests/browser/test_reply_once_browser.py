"""The composer's form sent twice by a real browser (Debian chromium) while the first
request is still at the server stores and posts one reply (issue 18, "One reply, one
post"). live.js turns Send off on submit; this is the double submit it does not see
(the page before its script ran, a script error, a resubmit): the form's one-time
token is what holds."""
import time

import pytest
from playwright.sync_api import expect

from apps.inbox import services
from apps.inbox.models import Message
from tests.factories import ConversationFactory, MessageFactory

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_form_sent_twice_while_the_first_is_in_flight_stores_one_reply(
        live_server, new_page, agent, queue, twitter_account, monkeypatch):
    conv = ConversationFactory(queue=queue, channel_account=twitter_account, status="open", assignee=agent)
    MessageFactory(conversation=conv, text="@acme where is my parcel?")
    reply_create, calls = services.reply_create, []

    def slow_reply_create(**kwargs):  # a slow server: the agent clicks again meanwhile
        calls.append(kwargs.get("client_token"))
        time.sleep(1.0)
        return reply_create(**kwargs)

    monkeypatch.setattr(services, "reply_create", slow_reply_create)
    page = new_page()
    login(page, live_server.url, agent)
    page.goto(f"{live_server.url}/inbox/c/{conv.pk}/")
    page.locator("#reply-text").fill("@alice it left the warehouse today")
    page.evaluate("""() => {
        const form = document.getElementById("composer"), send = () => HTMLFormElement.prototype.submit.call(form);
        setTimeout(send, 0);
        setTimeout(send, 300);
    }""")
    expect(page.locator("#timeline")).to_contain_text("it left the warehouse today", timeout=10000)
    deadline = time.monotonic() + 5
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)  # the other request finishes
    assert len(calls) == 2 and calls[0] == calls[1], "the browser sent the form twice, with one token"
    assert Message.objects.filter(conversation=conv, direction="out").count() == 1
    page.goto(f"{live_server.url}/inbox/c/{conv.pk}/")
    expect(page.locator("#timeline .msg-out")).to_have_count(1)
