"""A stored customer message whose routing task was lost (Redis down when it was
queued) is routed by the beat sweep: it reaches a queue, is scored, and a second
sweep changes nothing."""
import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.inbox.models import ConversationEvent, Message
from apps.routing.selectors import messages_unrouted
from apps.routing.tasks import unrouted_sweep_task
from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


def _stored(account, text, *, minutes_ago):
    conversation = ConversationFactory(channel_account=account, queue=None)
    message = MessageFactory(conversation=conversation, text=text)
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - dt.timedelta(minutes=minutes_ago))
    return conversation, message


def test_sweep_routes_what_a_lost_task_left_and_leaves_fresh_messages_to_their_task(queue, twitter_account):
    lost, lost_message = _stored(twitter_account, "@acme my parcel never arrived, awful", minutes_ago=10)
    fresh, fresh_message = _stored(twitter_account, "@acme hello there", minutes_ago=0)

    unrouted_sweep_task()

    lost.refresh_from_db()
    lost_message.refresh_from_db()
    assert lost.queue == queue  # in the default queue, where agents see it
    assert lost_message.sentiment_label == "negative" and lost_message.language == "en"
    assert ConversationEvent.objects.filter(conversation=lost, kind="routed").exists()
    fresh_message.refresh_from_db()
    assert fresh_message.sentiment_label == ""  # its own routing task is still on the way
    fresh.refresh_from_db()
    assert fresh.queue is None

    routed_events = ConversationEvent.objects.filter(conversation=lost, kind="routed").count()
    unrouted_sweep_task()
    assert ConversationEvent.objects.filter(conversation=lost, kind="routed").count() == routed_events


def test_unrouted_lookup_is_one_query_and_ignores_agents_replies(twitter_account):
    conversation, message = _stored(twitter_account, "@acme where is my order", minutes_ago=5)
    MessageFactory(conversation=conversation, direction="out", text="On its way!")
    Message.objects.filter(conversation=conversation).update(created_at=timezone.now() - dt.timedelta(minutes=5))
    with CaptureQueriesContext(connection) as ctx:
        pairs = messages_unrouted(older_than=dt.timedelta(minutes=2))
    assert pairs == [(conversation.pk, [message.pk])]
    assert len(ctx.captured_queries) == 1
