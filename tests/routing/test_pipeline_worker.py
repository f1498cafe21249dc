"""The routing pipeline on a real Celery worker (Redis broker, PostgreSQL in CI):
a mention on the stand-in Twitter API is polled, ingested, routed by a rule,
prioritised, given SLA due times and assigned; resolving it frees the agent and
the waiting conversation is assigned from the backlog."""
import time

import pytest

from apps.inbox.models import Conversation, ConversationEvent, Queue
from apps.inbox.services import conversation_status_set
from apps.ingest.tasks import poll_due_accounts_task
from apps.routing.models import RoutingRule, SlaPolicy
from tests.conftest import requires_redis
from tests.factories import QueueFactory, UserFactory
from tests.integration.conftest import celery_worker_on_redis  # noqa: F401 - the fixture

pytestmark = [requires_redis, pytest.mark.integration]


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {predicate.__doc__}")


def test_mention_routed_prioritised_sla_and_assigned_by_the_worker(twitter_api, twitter_account, team,
                                                                   celery_worker_on_redis):  # noqa: F811
    QueueFactory(team=team, name="General", is_default=True)
    billing = QueueFactory(team=team, name="Billing", assignment_mode=Queue.AssignmentMode.ROUND_ROBIN)
    agent = UserFactory(role="agent", capacity=1)
    team.members.add(agent)
    RoutingRule.objects.create(name="Refunds to billing", keywords=["refund"], set_queue=billing,
                               add_tags=["refund"])
    SlaPolicy.objects.create(name="Billing 30m", queue=billing, first_response_minutes=30,
                             resolution_minutes=480)
    twitter_api.add_user("2244994945", "angry_customer", "Angry Customer", followers=54_000)
    twitter_api.add_mention("@acme my order never arrived, awful service. I want a refund!",
                            author_id="2244994945")
    twitter_api.add_user("42", "second", "Second Customer", followers=10)
    twitter_api.add_mention("@acme also waiting on a refund here", author_id="42")

    poll_due_accounts_task.delay()

    def routed():
        """both conversations routed and one assigned"""
        convs = list(Conversation.objects.filter(queue=billing).order_by("-priority"))
        done = len(convs) == 2 and all(c.sla_due_at for c in convs) and any(c.assignee_id for c in convs)
        return convs if done else None

    first, second = wait_for(routed)
    assigned = first if first.assignee_id else second
    waiting = second if assigned is first else first
    assert assigned.assignee == agent and waiting.assignee is None  # capacity 1: the other waits
    angry = Conversation.objects.get(identity__handle="angry_customer")
    assert angry.priority_bucket <= 1 and angry.last_sentiment < 0
    assert angry.first_response_due_at is not None and angry.tags.filter(name="refund").exists()
    kinds = set(ConversationEvent.objects.filter(conversation=angry).values_list("kind", flat=True))
    assert {"routed", "priority_set", "sla_set"} <= kinds

    # the agent resolves: the routing.conversation_followup task gives them the waiting one
    conversation_status_set(conversation=assigned, status="resolved", actor=agent)

    def drained():
        """the waiting conversation assigned from the backlog"""
        waiting.refresh_from_db()
        return waiting.assignee_id == agent.pk

    wait_for(drained)
    by = ConversationEvent.objects.filter(conversation=waiting, kind="assigned").get().data["by"]
    assert by == "round_robin"
