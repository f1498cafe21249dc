"""Outbound exactly once when two attempts of one send overlap: a task redelivered
while its first run is still talking to the network (visibility timeout shorter
than the send, a duplicated delivery) must not post a second time."""
import threading
import time

import pytest

from apps.connectors.standins.twitter import TwitterStandIn
from apps.inbox.models import Message
from apps.inbox.sending import SendRetry, message_send
from apps.inbox.services import reply_create
from tests.factories import ChannelAccountFactory, ConversationFactory, MessageFactory

pytestmark = pytest.mark.integration


class SlowTwitter(TwitterStandIn):
    """Takes `post_delay` seconds before it handles a new tweet (a slow network)."""

    post_delay = 1.5

    def dispatch(self, method, path, query, body, headers):
        if method == "POST" and path == "/2/tweets":
            time.sleep(self.post_delay)
        return super().dispatch(method, path, query, body, headers)


@pytest.fixture
def slow_twitter(settings):
    with SlowTwitter() as server:
        settings.TWITTER_API_BASE_URL = server.base_url
        settings.PROVIDER_TIMEOUT_SECONDS = 5.0
        yield server


def test_overlapping_attempts_of_one_send_post_once(slow_twitter, agent, postgres,
                                                     django_capture_on_commit_callbacks):
    slow_twitter.add_user("11", "alice")
    tweet = slow_twitter.add_mention("@acme where is my parcel", author_id="11")
    conv = ConversationFactory(channel_account=ChannelAccountFactory(), identity__external_id="11")
    MessageFactory(conversation=conv, external_id=tweet["id"], text=tweet["text"])
    with django_capture_on_commit_callbacks(execute=False):
        msg = reply_create(conversation=conv, agent=agent, text="@alice checking now")

    outcomes = []

    def attempt():
        try:
            outcomes.append(message_send(message_id=msg.pk).send_status)
        except SendRetry as exc:
            outcomes.append(f"retry in {exc.countdown:.0f}s")

    first = threading.Thread(target=attempt)
    first.start()
    time.sleep(0.5)  # the first attempt is waiting on the network
    second = threading.Thread(target=attempt)  # the redelivered copy
    second.start()
    first.join(10)
    second.join(10)

    assert len(slow_twitter.posted) == 1, f"posted {len(slow_twitter.posted)} times; attempts: {outcomes}"
    assert "sent" in outcomes
    assert Message.objects.get(pk=msg.pk).send_status == "sent"
    # the overlapping copy backed off instead of posting, and a later run is a no-op
    assert any(o.startswith("retry") for o in outcomes), outcomes
    assert message_send(message_id=msg.pk).send_status == "sent"
    assert len(slow_twitter.posted) == 1
