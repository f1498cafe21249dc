"""Two routing workers at once on PostgreSQL: no agent goes over capacity and no
conversation is assigned twice (row locks: agents in id order, SKIP LOCKED on
waiting conversations)."""
import threading
from collections import Counter

import pytest
from django.db import connection, connections

from apps.inbox.models import Conversation, ConversationEvent, Queue
from apps.routing.backlog import backlog_drain
from apps.routing.services import conversation_route, conversations_route
from tests.factories import (ChannelAccountFactory, ConversationFactory, MessageFactory, QueueFactory, TeamFactory,
                             UserFactory)

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL (.ci/run)")


def run_together(*jobs):
    """Starts the jobs in threads at the same moment; re-raises the first error."""
    barrier, errors = threading.Barrier(len(jobs)), []

    def wrap(job):
        try:
            barrier.wait()
            job()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=wrap, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


@pytest.fixture
def setup(transactional_db):
    team = TeamFactory()
    queue = QueueFactory(team=team, is_default=True, assignment_mode=Queue.AssignmentMode.LEAST_LOADED)
    agents = [UserFactory(role="agent", capacity=3) for _ in range(3)]
    team.members.add(*agents)
    account = ChannelAccountFactory()
    return queue, agents, account


def assert_no_overfill_no_double(agents, expected_assigned):
    loads = Counter(Conversation.objects.filter(assignee__isnull=False).values_list("assignee_id", flat=True))
    assert all(loads[a.pk] <= a.capacity for a in agents), loads
    assert sum(loads.values()) == expected_assigned
    per_conversation = Counter(ConversationEvent.objects.filter(kind="assigned").values_list("conversation_id",
                                                                                           flat=True))
    assert max(per_conversation.values()) == 1, per_conversation


@pytest.mark.parametrize("round_", range(3))
def test_two_workers_routing_at_once(setup, round_):
    queue, agents, account = setup
    pairs = []
    for i in range(24):
        conv = ConversationFactory(channel_account=account)
        pairs.append((conv.pk, [MessageFactory(conversation=conv, text=f"@acme help {i}").pk]))

    def worker(chunk):
        return lambda: [conversation_route(conversation_id=c, message_ids=m) for c, m in chunk]

    run_together(worker(pairs[0::2]), worker(pairs[1::2]))
    assert_no_overfill_no_double(agents, expected_assigned=9)
    assert Conversation.objects.filter(assignee__isnull=True, queue=queue).count() == 15


def test_two_drains_and_a_router_at_once(setup):
    queue, agents, account = setup
    for _ in range(20):
        ConversationFactory(channel_account=account, queue=queue, status="new")
    fresh = ConversationFactory(channel_account=account)
    message = MessageFactory(conversation=fresh, text="@acme hi")

    run_together(lambda: backlog_drain(queue_id=queue.pk), lambda: backlog_drain(queue_id=queue.pk),
                 lambda: conversation_route(conversation_id=fresh.pk, message_ids=[message.pk]))
    assert_no_overfill_no_double(agents, expected_assigned=9)


@pytest.mark.parametrize("round_", range(3))
def test_two_batch_routers_and_a_drain_at_once(setup, round_):
    """Two routing tasks, each a batch (conversations locked in id order, then the
    agents in one statement), and a backlog drain."""
    queue, agents, account = setup
    for _ in range(4):
        ConversationFactory(channel_account=account, queue=queue, status="new")  # a backlog for the drain
    pairs = []
    for i in range(24):
        conv = ConversationFactory(channel_account=account)
        pairs.append((conv.pk, [MessageFactory(conversation=conv, text=f"@acme help {i}").pk]))

    def batch(chunk):
        def route():
            assert conversations_route(pairs=chunk) == []
        return route

    run_together(batch(pairs[0::2]), batch(pairs[1::2]), lambda: backlog_drain(queue_id=queue.pk))
    assert_no_overfill_no_double(agents, expected_assigned=9)
    assert Conversation.objects.filter(queue=queue, assignee__isnull=True).count() == 28 - 9
    assert Conversation.objects.filter(pk__in=[p[0] for p in pairs], queue__isnull=True).count() == 0
