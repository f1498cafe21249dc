"""The reports' counting of customer messages (apps/reports/inbound.py): every msg_in event
carries its conversation's dimensions, and a run costs the same few queries whatever the
number of messages (a field counting reads but does not load would be a query per message)."""
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.connectors.providers.base import InboundMention
from apps.inbox.models import Conversation, Message
from apps.ingest.services import mentions_ingest
from apps.reports.inbound import inbound_messages_record
from apps.reports.models import ConversationMetricState, MetricEvent
from apps.routing.services import conversations_route

pytestmark = pytest.mark.django_db


def _arrive(account, capture, first: int, count: int) -> None:
    """`count` customers' complaints stored and routed, as ingest and routing leave them."""
    mentions = [InboundMention(external_id=str(i), text=f"@acme order {i} never arrived #late, awful",
                               created_at=timezone.now(), author_external_id=str(9000 + i),
                               author_handle=f"cust{i}", author_name="Someone", thread_id=str(i))
                for i in range(first, first + count)]
    with mock.patch("apps.routing.services.conversations_route_later"), capture():
        result = mentions_ingest(account=account, mentions=mentions)
    conversations_route(pairs=list(result.conversations.items()))


def _queries_to_count(account, capture, first: int, count: int) -> int:
    _arrive(account, capture, first, count)
    with CaptureQueriesContext(connection) as ctx:
        assert inbound_messages_record() == count
    return len(ctx.captured_queries)


def test_a_run_costs_the_same_queries_for_3_messages_or_30(queue, twitter_account,
                                                            django_capture_on_commit_callbacks):
    assert inbound_messages_record() == 0  # the applier's lock row made, as by any earlier run
    few = _queries_to_count(twitter_account, django_capture_on_commit_callbacks, 1, 3)
    many = _queries_to_count(twitter_account, django_capture_on_commit_callbacks, 100, 30)
    assert many == few, (few, many)


def test_each_event_carries_its_conversation_and_message(queue, twitter_account, django_capture_on_commit_callbacks):
    _arrive(twitter_account, django_capture_on_commit_callbacks, 1, 4)
    inbound_messages_record()

    events = {e.key: e for e in MetricEvent.objects.filter(kind="msg_in")}
    assert len(events) == 4
    for message in Message.objects.filter(direction=Message.Direction.INBOUND).select_related("conversation"):
        conversation: Conversation = message.conversation
        event = events[f"in:{message.pk}"]
        assert (event.conversation_id, event.queue_id, event.team_id, event.channel, event.account_id,
                event.customer_id, event.agent_id) == (
            conversation.pk, queue.pk, queue.team_id, "twitter", twitter_account.pk, conversation.customer_id,
            conversation.assignee_id or 0)
        assert event.occurred_at == message.sent_at and event.value == message.sentiment
        assert event.data["message_id"] == message.pk and "late" in event.data["hashtags"]
        assert event.data["label"] == "negative"
        state = ConversationMetricState.objects.get(conversation_id=conversation.pk)
        assert state.cycle == 1 and state.cycle_counted
        assert MetricEvent.objects.filter(kind="opened", conversation_id=conversation.pk, cycle=1).count() == 1
