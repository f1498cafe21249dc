"""Routing a batch in one transaction (issue 8): the same outcome as routing
each conversation alone in turn, a number of queries that does not grow with
the batch, each message routed once, and ingest batches coalesced through the
pending list."""
import datetime as dt
import json
from unittest import mock

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.inbox.models import Conversation, ConversationEvent, Queue
from apps.routing.models import ConversationRouting, QueueMemberState, RoutingRule, SlaPolicy
from apps.routing.services import conversation_route, conversations_route
from tests.conftest import requires_redis
from tests.factories import ConversationFactory, MessageFactory, QueueFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

TEXTS = [
    "@acme my order never arrived, awful service. I want a refund!",
    "@acme where is my parcel?",
    "@acme FREE crypto giveaway click here",
    "Hola, mi pedido no ha llegado todavía y estoy muy molesto",
    "@acme love the new app, thanks!",
    "@acme the site is down, urgent, I cannot log in",
    "@acme my lawyer will hear about this",
    "@acme quick question about billing",
]


@pytest.fixture
def world(queue, make_agent, twitter_account):
    """Two queues (round robin; least loaded through a team rule), agents with
    little room (some conversations wait), an SLA policy, rules that tag, pick a
    queue, assign a team and close spam."""
    queue.assignment_mode = Queue.AssignmentMode.ROUND_ROBIN
    queue.save()
    agents = [make_agent(capacity=3), make_agent(capacity=2, channel_capacity={"twitter": 1}), make_agent(capacity=4)]
    other_team = TeamFactory()
    helpers = [UserFactory(role="agent", capacity=2) for _ in range(2)]
    other_team.members.add(*helpers)
    QueueFactory(team=other_team, name="Legal desk", assignment_mode=Queue.AssignmentMode.LEAST_LOADED)
    billing = QueueFactory(team=queue.team, name="Billing", assignment_mode=Queue.AssignmentMode.LEAST_LOADED)
    SlaPolicy.objects.create(name="Standard", first_response_minutes=60, next_response_minutes=30,
                             resolution_minutes=24 * 60)
    SlaPolicy.objects.create(name="Billing fast", queue=billing, first_response_minutes=15)
    RoutingRule.objects.create(name="Spam", position=1, regex=r"free\s+crypto", disposition="spam", stop=True)
    RoutingRule.objects.create(name="Refunds", position=2, keywords=["refund", "billing"], set_queue=billing,
                               add_tags=["money"])
    RoutingRule.objects.create(name="Lawyers", position=3, keywords=["lawyer"], assign_team=other_team,
                               set_priority_bucket=0, add_tags=["legal"])
    RoutingRule.objects.create(name="Spanish", position=4, languages=["es"], add_tags=["es"], priority_boost=5)
    return {"queue": queue, "agents": agents, "helpers": helpers, "account": twitter_account}


def make_batch(world, n, *, start=0, texts=TEXTS):
    """n new conversations, one customer message each, as ingest leaves them."""
    now = timezone.now()
    pairs = []
    for i in range(start, start + n):
        sent = now - dt.timedelta(minutes=3, seconds=i)
        conversation = ConversationFactory(channel_account=world["account"], cycle_started_at=sent,
                                           last_inbound_at=sent, identity__followers_count=(i % 4) * 7000)
        message = MessageFactory(conversation=conversation, text=texts[i % len(texts)], sent_at=sent)
        pairs.append((conversation.pk, [message.pk]))
    return pairs


def outcome(conversation_ids):
    """What routing decided, without ids or clock readings that differ between runs."""
    out = []
    for conversation in Conversation.objects.filter(pk__in=conversation_ids).order_by("pk"):
        state = ConversationRouting.objects.filter(conversation=conversation).first()
        out.append({
            "queue": conversation.queue_id, "assignee": conversation.assignee_id,
            "last_assignee": conversation.last_assignee_id, "status": conversation.status,
            "spam": conversation.is_spam, "priority": conversation.priority, "bucket": conversation.priority_bucket,
            "language": conversation.language, "first_sentiment": conversation.first_sentiment,
            "last_sentiment": conversation.last_sentiment,
            "dues": (conversation.first_response_due_at, conversation.next_response_due_at,
                     conversation.resolution_due_at, conversation.sla_due_at, conversation.sla_breached),
            "tags": sorted(conversation.tags.values_list("name", flat=True)),
            "events": [(e.kind, e.data) for e in ConversationEvent.objects.filter(conversation=conversation)
                       .exclude(kind="created").order_by("id")],
            # waiting_minutes is read off the clock: whole minutes (what the score uses)
            "state": state and ({**state.inputs, "waiting_minutes": int(state.inputs.get("waiting_minutes", 0))},
                                state.reasons, state.bucket_set, state.rules_cycle_at,
                                state.waiting_since, state.sla_policy_id, state.breached_targets,
                                state.sla_next_check_at),
            "messages": list(conversation.messages.order_by("id").values_list("language", "sentiment",
                                                                               "sentiment_label")),
        })
    return out


def turns():
    return sorted(QueueMemberState.objects.values_list("queue_id", "agent_id"))


class _Undo(Exception):
    pass


def test_a_batch_routes_exactly_as_one_conversation_at_a_time(world, make_agent):
    first = make_batch(world, 6)
    for conversation_id, message_ids in first:  # earlier traffic: agents have load, turns have been taken
        conversation_route(conversation_id=conversation_id, message_ids=message_ids)
    pairs = make_batch(world, 14, start=6)
    fresh = pairs[0][0]
    # a second message in a cycle routed before (rules not rerun, rescored), in the same batch
    again = Conversation.objects.get(pk=first[1][0])
    later = MessageFactory(conversation=again, text="@acme hello?? this is URGENT", sent_at=timezone.now())
    pairs.insert(3, (again.pk, [later.pk]))
    # a reopened conversation whose agent is online and has room goes back to them
    from apps.ingest.services import _conversation_reopen

    reopened = Conversation.objects.exclude(assignee=None).filter(pk__in=[p[0] for p in first]).first()
    reopened.status = "resolved"
    reopened.save()
    _conversation_reopen(reopened, timezone.now())
    reopened.save()
    back = MessageFactory(conversation=reopened, text="@acme it broke again", sent_at=timezone.now())
    pairs.insert(0, (reopened.pk, [back.pk]))
    ids = [p[0] for p in pairs]

    try:
        with transaction.atomic():
            for conversation_id, message_ids in pairs:
                conversation_route(conversation_id=conversation_id, message_ids=message_ids)
            one_by_one, turns_one_by_one = outcome(ids), turns()
            raise _Undo
    except _Undo:
        pass
    assert not ConversationEvent.objects.filter(conversation_id=fresh).exists()  # undone: the same start

    assert conversations_route(pairs=pairs) == []
    batch = outcome(ids)
    for row_batch, row_alone in zip(batch, one_by_one):
        for key in row_alone:
            assert row_batch[key] == row_alone[key], (key, row_batch[key], row_alone[key])
    assert batch == one_by_one
    assert turns() == turns_one_by_one
    # the batch had every path in it
    kinds = {kind for row in one_by_one for kind, _ in row["events"]}
    assert {"routed", "priority_set", "sla_set", "assigned", "queued", "status_changed"} <= kinds
    by = {data["by"] for row in one_by_one for kind, data in row["events"] if kind == "assigned"}
    assert by == {"round_robin", "least_loaded", "rule", "last_assignee"}


def count_queries(world, n, start):
    # no spam: a rule's spam close is an audit event the reports hook turns into metric rows, its own
    # queries per conversation (as for every status change anywhere)
    pairs = make_batch(world, n, start=start, texts=[t for t in TEXTS if "crypto" not in t])
    with CaptureQueriesContext(connection) as queries:
        assert conversations_route(pairs=pairs) == []
    return len(queries)


def test_queries_do_not_grow_with_the_batch(world):
    count_queries(world, 8, start=100)  # warm: every table and path seen once
    small = count_queries(world, 8, start=200)
    large = count_queries(world, 80, start=300)
    assert large <= small + 4, (small, large)
    assert small <= 40


def test_a_message_is_routed_once(world):
    pairs = make_batch(world, 5)
    conversations_route(pairs=pairs)
    before = ConversationEvent.objects.count()
    # a redelivered task, or a task whose batch another task took from the pending list
    assert conversations_route(pairs=pairs) == []
    conversation = conversation_route(conversation_id=pairs[0][0], message_ids=pairs[0][1])
    assert conversation.pk == pairs[0][0]
    assert ConversationEvent.objects.count() == before


def test_a_batch_that_fails_is_routed_one_by_one(world, monkeypatch):
    """A deadlock with another writer, a bad row: the batch is undone and each
    conversation routed in its own transaction, as before batching."""
    from apps.routing import services

    pairs = make_batch(world, 4)
    real = services._assign_batch
    calls = []

    def fails_in_a_batch(items, batch, now, trail):
        calls.append(len(batch))
        if len(batch) > 1:
            raise RuntimeError("deadlock detected")
        return real(items, batch, now, trail)

    monkeypatch.setattr(services, "_assign_batch", fails_in_a_batch)
    assert conversations_route(pairs=pairs) == []
    assert calls == [4, 1, 1, 1, 1]
    assert all(row["queue"] for row in outcome([p[0] for p in pairs]))
    assert ConversationEvent.objects.filter(kind="priority_set").count() == 3  # the failed batch left nothing


@requires_redis
def test_ingest_batches_waiting_are_routed_by_the_first_routing_task(world):
    from apps.routing import services, tasks
    from apps.routing.pending import pending_list

    client, key = pending_list()
    client.delete(key)
    sent = []
    first, second, third = make_batch(world, 3), make_batch(world, 1, start=3), make_batch(world, 2, start=4)
    with mock.patch("apps.routing.tasks.conversation_route_task.delay", lambda *a: sent.append(("one", a))), \
            mock.patch("apps.routing.tasks.conversations_route_task.delay", lambda *a: sent.append(("many", a))):
        for pairs in (first, second, third):
            services.conversations_route_later(pairs=pairs)
    assert [kind for kind, _ in sent] == ["many", "one", "many"]
    assert [json.loads(e) for e in client.lrange(key, 0, -1)] == [[[c, m] for c, m in p] for p in (first, second,
                                                                                                    third)]

    tasks.conversation_route_task.run(*sent[1][1])  # the second batch's task starts first: it routes all three
    assert client.llen(key) == 0
    ids = [p[0] for p in first + second + third]
    assert Conversation.objects.filter(pk__in=ids, queue__isnull=False).count() == 6
    before = ConversationEvent.objects.count()
    tasks.conversations_route_task.run(*sent[0][1])  # the others find their messages routed
    tasks.conversations_route_task.run(*sent[2][1])
    assert ConversationEvent.objects.count() == before


def _mention(ext, author, text):
    from apps.connectors.providers.base import InboundMention

    return InboundMention(external_id=ext, text=text, created_at=timezone.now() - dt.timedelta(minutes=2),
                          author_external_id=author, author_handle=f"h{author}", author_name=f"A {author}",
                          thread_id=ext, author_followers=int(author) * 3000)


def _ingested_not_routed(world, mentions, django_capture_on_commit_callbacks):
    """An ingest batch as a worker stores it, its routing (after the commit) not run yet."""
    from apps.ingest.services import mentions_ingest

    with django_capture_on_commit_callbacks(execute=False):
        return mentions_ingest(account=world["account"], mentions=mentions, route_now=True)


def test_routing_right_after_ingest_decides_as_if_it_read_the_rows_back(world, django_capture_on_commit_callbacks):
    """Ingest hands routing what it just wrote (RoutingHints): new and returning
    customers' conversations are routed as if read back, without reading them back."""
    earlier = _ingested_not_routed(world, [_mention(f"e{i}", str(i), TEXTS[i]) for i in range(4)],
                                   django_capture_on_commit_callbacks)
    conversations_route(pairs=list(earlier.conversations.items()))  # returning customers, agents with load
    batch = [_mention(f"n{i}", str(i), TEXTS[(i + 3) % len(TEXTS)]) for i in range(2, 9)]
    result = _ingested_not_routed(world, batch, django_capture_on_commit_callbacks)
    pairs = list(result.conversations.items())
    ids = [conversation_id for conversation_id, _ in pairs]
    assert set(ids) & set(earlier.conversations)  # some went into open conversations
    try:
        with transaction.atomic():
            assert conversations_route(pairs=pairs) == []
            read_back, turns_read_back = outcome(ids), turns()
            raise _Undo
    except _Undo:
        pass
    assert not ConversationEvent.objects.filter(conversation_id__in=ids, kind="priority_set",
                                                data__why="new message").exists()  # undone
    with CaptureQueriesContext(connection) as queries:
        assert conversations_route(pairs=pairs, hints=result.routing_hints) == []
    assert outcome(ids) == read_back
    assert turns() == turns_read_back
    if connection.vendor == "postgresql":
        assert set(result.routing_hints.conversations) == set(ids)
        reads = [q["sql"] for q in queries if 'FROM "inbox_conversation"' in q["sql"]
                 or 'FROM "inbox_message"' in q["sql"]]
        assert not [sql for sql in reads if '"inbox_conversation"."subject"' in sql or '"inbox_message"."text"' in sql]


def test_routing_right_after_ingest_reads_back_a_conversation_changed_in_between(
        world, django_capture_on_commit_callbacks):
    """An agent takes the conversation between ingest's commit and routing: routing
    sees the agent (the row is not the version ingest wrote) and does not assign it
    again over them."""
    from apps.inbox.services import conversation_assign

    result = _ingested_not_routed(world, [_mention("1", "7", "@acme where is my parcel?")],
                                  django_capture_on_commit_callbacks)
    conversation = Conversation.objects.get(pk=next(iter(result.conversations)))
    chosen = world["agents"][2]
    conversation_assign(conversation=conversation, assignee=chosen, reason="taken by hand")
    assert conversations_route(pairs=list(result.conversations.items()), hints=result.routing_hints) == []
    conversation.refresh_from_db()
    assert conversation.assignee == chosen and conversation.queue is not None
    assert ConversationEvent.objects.filter(conversation=conversation, kind="assigned").count() == 1
