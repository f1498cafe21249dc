"""Auto-assignment: round robin and least loaded among online agents with room;
the backlog waits, and drains urgent-and-oldest first when someone frees up."""
import datetime as dt

import pytest
from django.utils import timezone

from apps.inbox.models import Conversation, Queue
from apps.routing.backlog import agent_available, backlog_drain, conversation_followup
from tests.factories import ConversationFactory

from .conftest import events

pytestmark = pytest.mark.django_db


def set_mode(queue, mode):
    queue.assignment_mode = mode
    queue.save()


def test_round_robin_takes_turns(queue, make_agent, mention):
    set_mode(queue, Queue.AssignmentMode.ROUND_ROBIN)
    a, b, c = make_agent(), make_agent(), make_agent()
    got = [mention(f"@acme question {i}").assignee for i in range(6)]
    assert got == [a, b, c, a, b, c]


def test_least_loaded_fills_the_emptiest_agent(queue, make_agent, mention, twitter_account):
    set_mode(queue, Queue.AssignmentMode.LEAST_LOADED)
    busy, free = make_agent(), make_agent()
    for _ in range(3):
        ConversationFactory(channel_account=twitter_account, queue=queue, assignee=busy, status="open")
    got = [mention(f"@acme q{i}").assignee for i in range(4)]
    assert got == [free, free, free, busy]  # free reaches 3 like busy, then ties go by turn
    assert events(Conversation.objects.latest("id"), "assigned")[0].data["by"] == "least_loaded"


def test_offline_agents_and_full_agents_get_nothing_and_the_conversation_waits(queue, make_agent, mention):
    set_mode(queue, Queue.AssignmentMode.ROUND_ROBIN)
    make_agent(presence="offline")
    make_agent(presence="away")
    full = make_agent(capacity=1)
    assert mention("@acme one").assignee == full
    waiting = mention("@acme two")
    assert waiting.assignee is None and waiting.queue == queue
    queued, = events(waiting, "queued")
    assert "no online agent with free capacity" in queued.data["reason"]


def test_per_channel_capacity_is_respected(queue, make_agent, mention):
    set_mode(queue, Queue.AssignmentMode.ROUND_ROBIN)
    agent = make_agent(capacity=10, channel_capacity={"twitter": 1})
    assert mention("@acme one").assignee == agent
    assert mention("@acme two").assignee is None


def test_manual_queue_never_assigns(queue, make_agent, mention):
    make_agent()
    assert mention("@acme hi").assignee is None


def test_backlog_drains_urgent_then_oldest_when_an_agent_comes_online(queue, make_agent, twitter_account):
    set_mode(queue, Queue.AssignmentMode.ROUND_ROBIN)
    now = timezone.now()
    conv = {}
    for name, bucket, age in [("old-normal", 2, 90), ("new-urgent", 0, 5), ("old-urgent", 0, 60),
                              ("newest-low", 3, 1)]:
        conv[name] = ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=bucket,
                                         cycle_started_at=now - dt.timedelta(minutes=age), status="new")
    ConversationFactory(channel_account=twitter_account, queue=queue, status="new", is_spam=True)
    agent = make_agent(capacity=3, presence="offline")
    assert agent_available(agent_id=agent.pk) == []  # offline: nothing moves
    agent.presence = "online"
    agent.save()
    assigned = agent_available(agent_id=agent.pk)
    assert assigned == [conv["old-urgent"].pk, conv["new-urgent"].pk, conv["old-normal"].pk]
    conv["newest-low"].refresh_from_db()
    assert conv["newest-low"].assignee is None
    assert events(conv["old-urgent"], "assigned")[0].data["reason"].startswith("backlog of")


def test_resolving_frees_the_agent_and_the_next_waiting_conversation_is_assigned(
        queue, make_agent, mention, django_capture_on_commit_callbacks):
    from apps.inbox.services import conversation_status_set

    set_mode(queue, Queue.AssignmentMode.ROUND_ROBIN)
    agent = make_agent(capacity=1)
    first = mention("@acme first")
    second = mention("@acme second")
    assert first.assignee == agent and second.assignee is None
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        conversation_status_set(conversation=first, status="resolved", actor=agent)
    followups = [cb for cb in callbacks if "conversation_work_changed" in cb.__qualname__]
    assert followups, "resolving must tell routing after commit"
    # what the routing.conversation_followup task runs
    conversation_followup(conversation_id=first.pk, freed_agent_id=agent.pk)
    second.refresh_from_db()
    assert second.assignee == agent


def test_unassigned_by_a_supervisor_goes_to_someone_else(queue, make_agent, mention, supervisor):
    from apps.inbox.services import conversation_assign

    set_mode(queue, Queue.AssignmentMode.ROUND_ROBIN)
    a, b = make_agent(), make_agent()
    conv = mention("@acme hi")
    assert conv.assignee == a
    conversation_assign(conversation=conv, assignee=None, actor=supervisor, reason="a is swamped")
    conversation_followup(conversation_id=conv.pk, freed_agent_id=a.pk)
    conv.refresh_from_db()
    assert conv.assignee == b


def test_agent_availability_changed_runs_the_drain_on_the_routing_queue(queue, make_agent, mention, celery_eager,
                                                                       django_capture_on_commit_callbacks):
    from apps.routing.backlog import agent_availability_changed

    set_mode(queue, Queue.AssignmentMode.LEAST_LOADED)
    agent = make_agent(presence="offline")
    waiting = mention("@acme hi")
    assert waiting.assignee is None
    agent.presence = "online"
    agent.save()
    with django_capture_on_commit_callbacks(execute=True):
        agent_availability_changed(agent=agent)
    waiting.refresh_from_db()
    assert waiting.assignee == agent


def test_drain_of_a_manual_queue_does_nothing(queue, make_agent, twitter_account):
    make_agent()
    ConversationFactory(channel_account=twitter_account, queue=queue, status="new")
    assert backlog_drain(queue_id=queue.pk) == []
