"""The CSAT survey goes to the customer privately, never as a public reply (issue 21: it was posted
publicly, with a localhost link, on a page titled "cxinbox"). On X it is a direct message (what the
stand-in X API received); on a network with no private messages nothing is posted and the thread
says so; the survey page carries the brand (BRAND_NAME), escaped, and the link SITE_URL."""
from unittest import mock

import pytest
from django.urls import reverse

from apps.inbox.models import Message
from apps.inbox.sending import message_send
from apps.reports import surveys
from apps.reports.models import Survey
from tests.factories import ChannelAccountFactory, ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


def _resolve_with_survey(client, agent, conv):
    client.force_login(agent)
    with mock.patch("apps.inbox.tasks.message_send_task.delay"):
        return client.post(reverse("inbox:status", args=[conv.pk]), {"status": "resolved", "send_survey": "on"},
                           follow=True).content.decode()


def test_on_x_the_survey_is_a_direct_message_with_the_site_url(client, agent, queue, twitter_api, twitter_account,
                                                               settings):
    settings.SITE_URL = "https://support.acme.example/"
    twitter_api.add_user("11", "alice")
    tweet = twitter_api.add_mention("@acme my order is late", author_id="11")
    conv = ConversationFactory(channel_account=twitter_account, queue=queue, assignee=agent, status="open",
                               is_public=True, identity__external_id="11", identity__handle="alice")
    MessageFactory(conversation=conv, external_id=tweet["id"], text=tweet["text"])

    page = _resolve_with_survey(client, agent, conv)
    assert "survey is on its way to the customer by private message" in page
    survey = Survey.objects.get(conversation=conv)
    message = Message.objects.get(pk=survey.message_id)
    assert message.kind == Message.Kind.PRIVATE and message.is_bot

    message_send(message_id=message.pk)
    assert twitter_api.posted == []  # nothing public
    [dm] = twitter_api.dms
    assert dm["participant_id"] == "11"
    assert "https://support.acme.example/survey/" in dm["text"] and "localhost" not in dm["text"]


@pytest.mark.parametrize("provider, label", [("reddit", "Reddit"), ("bluesky", "Bluesky")])
def test_without_private_messages_nothing_is_posted_and_the_thread_says_so(client, agent, queue, provider, label):
    account = ChannelAccountFactory(provider=provider, name=f"Acme on {label}")
    conv = ConversationFactory(channel_account=account, queue=queue, assignee=agent, status="open", is_public=True,
                               identity__provider=provider)
    MessageFactory(conversation=conv)

    page = _resolve_with_survey(client, agent, conv)
    expected = f"survey not sent: {label} has no private messages"
    assert f"Resolved; {expected}." in page
    assert not Survey.objects.filter(conversation=conv).exists()
    assert not conv.messages.filter(direction="out").exists()
    conv.refresh_from_db()
    assert conv.status == "resolved"
    # on the thread, among the messages, for whoever opens it later
    thread = client.get(reverse("inbox:detail", args=[conv.pk])).content.decode()
    timeline = thread[thread.index('id="timeline"'):] if 'id="timeline"' in thread else thread
    assert expected in timeline and 'class="note timeline-event"' in thread
    assert conv.events.filter(kind="survey_not_sent", data__reason=f"{label} has no private messages").exists()


def test_the_survey_page_shows_the_brand_escaped(client, agent, queue, twitter_account, settings):
    settings.BRAND_NAME = "Acme <script>alert(1)</script> & Co"
    conv = ConversationFactory(channel_account=twitter_account, queue=queue, status="resolved")
    MessageFactory(conversation=conv)
    survey = surveys.survey_send(conversation=conv, actor=agent)
    url = surveys.survey_url(survey)
    page = client.get(url[url.index("/survey/"):]).content.decode()
    brand = "Acme &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"
    assert f"<title>Your feedback · {brand}</title>" in page
    assert f'<span class="brand">{brand}</span>' in page
    assert "<script>alert(1)" not in page
    assert "cxinbox" not in page.replace("/static/", "")


def test_the_brand_defaults_to_cxinbox(client, agent, queue, twitter_account):
    conv = ConversationFactory(channel_account=twitter_account, queue=queue, status="resolved")
    MessageFactory(conversation=conv)
    url = surveys.survey_url(surveys.survey_send(conversation=conv, actor=agent))
    assert "<title>Your feedback · cxinbox</title>" in client.get(url[url.index("/survey/"):]).content.decode()
