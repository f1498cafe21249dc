"""Replies: queued, posted once through the provider, `sent` or `failed` with the reason."""
import datetime as dt

import pytest
from django.utils import timezone

from apps.core.errors import Conflict, DomainError
from apps.inbox.models import Message
from apps.inbox.sending import SendRetry, message_send
from apps.inbox.services import reply_create
from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def thread(twitter_api, twitter_account):
    twitter_api.add_user("11", "alice")
    tweet = twitter_api.add_mention("@acme my order is late", author_id="11")
    conv = ConversationFactory(channel_account=twitter_account, identity__external_id="11",
                               identity__handle="alice")
    MessageFactory(conversation=conv, external_id=tweet["id"], text=tweet["text"])
    return conv, tweet


def test_reply_is_posted_once_and_marked_sent(thread, agent, twitter_api, django_capture_on_commit_callbacks):
    conv, tweet = thread
    with django_capture_on_commit_callbacks() as callbacks:
        msg = reply_create(conversation=conv, agent=agent, text="@alice sorry! DM us?")
    assert msg.send_status == "queued" and msg.in_reply_to_external_id == tweet["id"]
    assert len(callbacks) >= 1
    msg = message_send(message_id=msg.pk)
    assert msg.send_status == "sent"
    assert twitter_api.replies_to(tweet["id"]) == [
        {**twitter_api.tweets[msg.external_id], "in_reply_to_tweet_id": tweet["id"]}
    ]
    # a redelivered task does nothing
    message_send(message_id=msg.pk)
    assert len(twitter_api.replies_to(tweet["id"])) == 1
    conv.refresh_from_db()
    assert conv.status == "open" and conv.first_response_at is not None and conv.assignee == agent


def test_refused_reply_fails_with_the_networks_reason(thread, agent, twitter_api,
                                                      django_capture_on_commit_callbacks):
    conv, tweet = thread
    twitter_api.add_fault("POST", "/2/tweets", status=403,
                          body=b'{"title":"Forbidden","detail":"You are not permitted to reply.","status":403}')
    with django_capture_on_commit_callbacks():
        msg = reply_create(conversation=conv, agent=agent, text="hello")
    msg = message_send(message_id=msg.pk)
    assert msg.send_status == "failed"
    assert "403" in msg.failure_reason
    assert conv.events.filter(kind="reply_failed").exists()


def test_unknown_outcome_is_checked_before_retry_never_two_posts(thread, agent, twitter_api, settings,
                                                                 django_capture_on_commit_callbacks):
    settings.PROVIDER_TIMEOUT_SECONDS = 0.3
    conv, tweet = thread
    twitter_api.add_fault("POST", "/2/tweets", delay=1.0, after_handling=True)
    with django_capture_on_commit_callbacks():
        msg = reply_create(conversation=conv, agent=agent, text="on it")
    with pytest.raises(SendRetry):
        message_send(message_id=msg.pk)
    assert Message.objects.get(pk=msg.pk).send_status == "sending"
    msg = message_send(message_id=msg.pk)
    assert msg.send_status == "sent"
    assert len(twitter_api.replies_to(tweet["id"])) == 1
    assert msg.external_id == twitter_api.replies_to(tweet["id"])[0]["id"]


def test_rate_limited_send_waits_for_the_reset(thread, agent, twitter_api, django_capture_on_commit_callbacks):
    conv, _ = thread
    reset = int(timezone.now().timestamp()) + 90
    twitter_api.add_fault("POST", "/2/tweets", status=429, headers={"x-rate-limit-reset": str(reset)})
    with django_capture_on_commit_callbacks():
        msg = reply_create(conversation=conv, agent=agent, text="hi")
    with pytest.raises(SendRetry) as exc:
        message_send(message_id=msg.pk)
    assert 80 <= exc.value.countdown <= 91
    assert Message.objects.get(pk=msg.pk).send_status == "queued"


def test_too_long_reply_is_refused_with_the_limit(thread, agent):
    conv, _ = thread
    with pytest.raises(DomainError, match="allows 280"):
        reply_create(conversation=conv, agent=agent, text="x" * 281)
    assert not Message.objects.filter(direction="out").exists()


def test_send_refused_when_customer_wrote_after_draft_began(thread, agent):
    conv, _ = thread
    draft_started = timezone.now() - dt.timedelta(minutes=1)
    MessageFactory(conversation=conv, text="hello? anyone?")
    with pytest.raises(Conflict, match="customer sent a new message"):
        reply_create(conversation=conv, agent=agent, text="hi", draft_started_at=draft_started)


def test_send_refused_when_another_agent_replied_after_draft_began(thread, agent, django_capture_on_commit_callbacks):
    from tests.factories import UserFactory

    conv, _ = thread
    draft_started = timezone.now()
    with django_capture_on_commit_callbacks():
        reply_create(conversation=conv, agent=UserFactory(), text="I've got this one")
    with pytest.raises(Conflict, match="another agent replied"):
        reply_create(conversation=conv, agent=agent, text="hi", draft_started_at=draft_started)
