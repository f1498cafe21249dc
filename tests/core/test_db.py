"""rows_update / rows_insert write what the ORM would (every type routing and
ingest send, NULLs, JSON with quotes, microseconds), on SQLite and PostgreSQL."""
import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from apps.core.db import rows_insert, rows_update
from apps.inbox.models import Conversation, ConversationEvent
from apps.routing.models import ConversationRouting
from tests.factories import ConversationFactory, QueueFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_rows_update_writes_each_row_its_own_values():
    queue, agent = QueueFactory(), UserFactory()
    conversations = [ConversationFactory() for _ in range(3)]
    when = timezone.now().replace(microsecond=123456)
    a, b, c = conversations
    a.queue, a.assignee, a.priority, a.last_sentiment, a.sla_due_at = queue, agent, 77, -0.8398, when
    a.sla_breached, a.language, a.status = True, "es", "open"
    b.queue, b.assignee, b.priority, b.last_sentiment, b.sla_due_at, b.language = None, None, 5, None, None, ""
    c.priority = 100
    fields = ["queue", "assignee", "priority", "last_sentiment", "sla_due_at", "sla_breached", "language", "status"]
    assert rows_update(conversations, fields) == 3
    for conversation in conversations:
        fresh = Conversation.objects.get(pk=conversation.pk)
        assert [getattr(fresh, Conversation._meta.get_field(f).attname) for f in fields] == \
               [getattr(conversation, Conversation._meta.get_field(f).attname) for f in fields]
    assert Conversation.objects.get(pk=a.pk).sla_due_at == when  # microseconds kept


def test_rows_update_json_and_rows_insert():
    conversation = ConversationFactory()
    state = ConversationRouting(conversation=conversation, inputs={"text": 'say "hi" \\ ünï 😡', "n": [1, None]},
                                reasons=["a", 'b "c"'], breached_targets=[],
                                waiting_since=timezone.now() - dt.timedelta(minutes=3))
    rows_insert([state])
    fresh = ConversationRouting.objects.get(pk=conversation.pk)
    assert (fresh.inputs, fresh.reasons, fresh.waiting_since) == (state.inputs, state.reasons, state.waiting_since)
    assert fresh.updated_at is not None  # auto_now, as bulk_create sets it
    state.inputs, state.waiting_since, state.sla_next_check_at = {}, None, timezone.now()
    rows_update([state], ["inputs", "waiting_since", "sla_next_check_at"])
    fresh = ConversationRouting.objects.get(pk=conversation.pk)
    assert (fresh.inputs, fresh.waiting_since, fresh.sla_next_check_at) == ({}, None, state.sla_next_check_at)

    events = rows_insert([ConversationEvent(conversation=conversation, kind=k, data={"reason": f'"{k}"'})
                          for k in ("routed", "priority_set", "assigned")])
    assert [e.pk for e in events] == sorted(e.pk for e in events) and all(e.pk for e in events)
    stored = list(ConversationEvent.objects.filter(conversation=conversation).order_by("id"))
    assert [(e.pk, e.kind, e.data) for e in stored] == [(e.pk, e.kind, e.data) for e in events]
    assert all(e.created_at for e in stored)


def test_rows_insert_values_fills_defaults_and_returns_the_keys_in_order():
    from apps.core.db import rows_insert_values
    from apps.inbox.models import Message

    conversation = ConversationFactory()
    sent = timezone.now().replace(microsecond=654321)
    ids = rows_insert_values(Message, [
        {"conversation_id": conversation.pk, "channel_account_id": conversation.channel_account_id,
         "direction": Message.Direction.INBOUND, "text": 'say "hi" ünï 😡', "sent_at": sent, "external_id": "a",
         "raw": {"quoted_text": 'x "y"'}, "sentiment": -0.4, "sentiment_label": "negative", "language": "en"},
        {"conversation_id": conversation.pk, "channel_account_id": conversation.channel_account_id,
         "direction": "in", "text": "second", "sent_at": sent, "external_id": "b"},
    ])
    first, second = (Message.objects.get(pk=pk) for pk in ids)
    assert (first.text, first.raw, first.sent_at, first.sentiment, first.external_id) == \
           ('say "hi" ünï 😡', {"quoted_text": 'x "y"'}, sent, -0.4, "a")
    # what a left-out field gets is its default, as Message(...).save() would give it
    assert (second.kind, second.raw, second.sentiment, second.sentiment_label, second.send_attempts,
            second.author_identity_id, second.external_id) == ("public", {}, None, "", 0, None, "b")
    assert second.created_at is not None and second.updated_at is not None
    with pytest.raises(TypeError):
        rows_insert_values(Message, [{"conversation": conversation}])


@pytest.mark.django_db(transaction=True)
def test_only_transactions_redone_from_disk_commit_without_waiting_for_the_flush(twitter_account, monkeypatch):
    """Routing and push-delivery ingest commit without waiting for their WAL flush
    (a crash can only lose what the routing markers or the pending delivery bring
    back); ingest of mentions handed over in a task, the only copy of them, waits
    for it. The setting ends with each transaction."""
    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")
    from django.utils import timezone

    from apps.connectors.models import PushDelivery
    from apps.connectors.providers.base import InboundMention, mention_to_dict
    from apps.ingest.push import push_delivery_ingest
    from apps.ingest.services import mentions_ingest
    from apps.routing import pending as routing_pending
    from apps.routing import services as routing

    seen = []

    def setting():
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    def spy(fn, step):
        def wrapped(*args, **kwargs):
            seen.append((step, setting()))
            return fn(*args, **kwargs)
        return wrapped

    from apps.ingest import services as connectors

    monkeypatch.setattr(connectors, "messages_unrouted_add", spy(routing_pending.messages_unrouted_add, "ingest"))
    monkeypatch.setattr(routing, "_states_lock", spy(routing._states_lock, "routing"))

    def mention(ext):
        return InboundMention(external_id=ext, text="@acme my order is late", created_at=timezone.now(),
                              author_external_id=f"u{ext}", author_handle=f"h{ext}", author_name="A", thread_id=ext)

    mentions_ingest(account=twitter_account, mentions=[mention("1")], route_now=True)
    assert seen == [("ingest", "on"), ("routing", "off")]
    seen.clear()
    delivery = PushDelivery.objects.create(account=twitter_account, mentions=[mention_to_dict(mention("2"))])
    push_delivery_ingest(delivery_id=delivery.pk)
    assert seen == [("ingest", "off"), ("routing", "off")]
    assert setting() == "on"
    assert PushDelivery.objects.get(pk=delivery.pk).status == "done"


def test_rows_insert_keeps_any_text_and_json_as_the_orm_would():
    """Non-ASCII and emoji, quotes and backslashes, integer keys (as json, turned into
    strings) and a choices enum survive the JSON document unchanged."""
    conversation = ConversationFactory()
    data = {"text": 'café "quoted" \\ back 😀 — ünïcode', 2: "two", "nested": {"list": [1, 2.5, None, True]},
            "status": Conversation._meta.get_field("status").choices[1][0]}
    event = rows_insert([ConversationEvent(conversation=conversation, kind="note_added", data=data)])[0]
    fresh = ConversationEvent.objects.get(pk=event.pk)
    assert fresh.data == {**{k: v for k, v in data.items() if k != 2}, "2": "two"}


def test_any_lookup_finds_what_in_finds_with_one_parameter():
    """`__any` (ingest's and routing's batch lookups) returns what `__in` does, for
    keys, foreign keys and text, an empty list included; on PostgreSQL the list
    goes as one array parameter, not one placeholder per value."""
    from django.test.utils import CaptureQueriesContext

    conversations = [ConversationFactory() for _ in range(4)]
    ids = [c.pk for c in conversations[:3]] + [10 ** 9]
    assert set(Conversation.objects.filter(pk__any=ids)) == set(conversations[:3])
    customers = [c.customer_id for c in conversations[1:]]
    assert set(Conversation.objects.filter(customer_id__any=customers)) == set(conversations[1:])
    assert set(Conversation.objects.filter(customer__any=customers)) == set(conversations[1:])
    threads = [conversations[0].external_thread_id, "nope", 'it\'s "quoted"']
    assert list(Conversation.objects.filter(external_thread_id__any=threads)) == [conversations[0]]
    assert list(Conversation.objects.filter(pk__any=[])) == []
    with CaptureQueriesContext(connection) as queries:
        list(Conversation.objects.filter(pk__any=ids))
    if connection.vendor == "postgresql":
        assert "= ANY(" in queries[0]["sql"] and " IN (" not in queries[0]["sql"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL planner setting")
def test_bitmap_scans_off_holds_inside_and_is_put_back_after_and_on_a_savepoint_rollback():
    from django.db import transaction

    from apps.core.db import bitmap_scans_off

    def setting():
        with connection.cursor() as cursor:
            cursor.execute("SHOW enable_bitmapscan")
            return cursor.fetchone()[0]

    with transaction.atomic():
        with bitmap_scans_off():
            assert setting() == "off"
        assert setting() == "on"
        with pytest.raises(ZeroDivisionError):
            with transaction.atomic(), bitmap_scans_off():
                assert setting() == "off"
                1 / 0
        assert setting() == "on"  # the savepoint's rollback put it back
