"""SLA due times set on routing, breaches recorded once and raised; aging moves waiting work up."""
import datetime as dt
from unittest import mock

import pytest
from django.utils import timezone

from apps.inbox.models import Conversation
from apps.routing.backlog import conversation_followup
from apps.routing.config_cache import sla_policy_for
from apps.routing.configuration import business_hours_set
from apps.routing.models import ConversationRouting, SlaPolicy
from apps.routing.sla import priorities_age, sla_breaches_check
from tests.factories import MessageFactory, QueueFactory

from .conftest import events

pytestmark = pytest.mark.django_db
UTC = dt.timezone.utc


def test_most_specific_policy_wins(queue):
    other = QueueFactory(team=queue.team)
    g = SlaPolicy.objects.create(name="global", resolution_minutes=600)
    urgent = SlaPolicy.objects.create(name="urgent anywhere", priority_bucket=0, first_response_minutes=15)
    q = SlaPolicy.objects.create(name="queue", queue=queue, first_response_minutes=60)
    qu = SlaPolicy.objects.create(name="queue urgent", queue=queue, priority_bucket=0, first_response_minutes=5)
    assert sla_policy_for(queue_id=queue.pk, bucket=0) == qu
    assert sla_policy_for(queue_id=queue.pk, bucket=2) == q
    assert sla_policy_for(queue_id=other.pk, bucket=0) == urgent
    assert sla_policy_for(queue_id=other.pk, bucket=3) == g


def test_business_hours_policy_counts_working_time_in_the_team_zone(queue, mention, supervisor):
    SlaPolicy.objects.create(name="office", first_response_minutes=60, business_hours_only=True)
    business_hours_set(team=queue.team, actor=supervisor, time_zone="America/New_York", schedule={
        d: [["09:00", "17:00"]] for d in ["mon", "tue", "wed", "thu", "fri"]})
    # Friday 16:30 New York = 21:30 UTC: due Monday 09:30 New York = 14:30 UTC
    friday = dt.datetime(2026, 11, 20, 21, 30, tzinfo=UTC)
    conv = mention("@acme hi", sent_at=friday)
    assert conv.first_response_due_at == dt.datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
    assert events(conv, "sla_set")[0].data["business_hours"] is True


def test_breach_is_recorded_once_and_raised_to_supervisors(queue, mention, minutes_ago,
                                                           django_capture_on_commit_callbacks):
    SlaPolicy.objects.create(name="fast", first_response_minutes=10, resolution_minutes=120)
    conv = mention("@acme help", sent_at=minutes_ago(5))
    assert not conv.sla_breached
    assert sla_breaches_check() == []  # not due yet

    later = timezone.now() + dt.timedelta(minutes=6)
    with mock.patch("apps.routing.trail.inbox_push_each") as push:
        with django_capture_on_commit_callbacks(execute=True):
            assert sla_breaches_check(now=later) == [conv.pk]
    push.assert_called_once_with([("sla_breached", conv.pk, {"target": "first_response",
                                                              "due_at": conv.first_response_due_at.isoformat()})])
    conv.refresh_from_db()
    assert conv.sla_breached
    breach, = events(conv, "sla_breached")
    assert breach.data["target"] == "first_response"
    assert breach.data["due_at"] == conv.first_response_due_at.isoformat()
    assert breach.data["reason"].startswith("first response was due ")
    # still unanswered, so it keeps its place at the top of the list, but is not raised twice
    assert conv.sla_due_at == conv.first_response_due_at
    assert sla_breaches_check(now=later + dt.timedelta(minutes=1)) == []
    assert len(events(conv, "sla_breached")) == 1
    # the resolution target is still checked when its time comes
    assert ConversationRouting.objects.get(pk=conv.pk).sla_next_check_at == conv.resolution_due_at
    assert sla_breaches_check(now=conv.resolution_due_at + dt.timedelta(seconds=1)) == [conv.pk]
    assert [e.data["target"] for e in events(conv, "sla_breached")] == ["first_response", "resolution"]


def test_a_reply_meets_first_response_and_sla_due_moves_on(queue, mention, agent, minutes_ago):
    from apps.inbox.services import reply_create

    SlaPolicy.objects.create(name="p", first_response_minutes=30, next_response_minutes=20, resolution_minutes=600)
    conv = mention("@acme help", sent_at=minutes_ago(10))
    assert conv.sla_due_at == conv.first_response_due_at
    reply_create(conversation=conv, agent=agent, text="@cust on it")
    conversation_followup(conversation_id=conv.pk)  # the task fired after the reply's commit
    conv.refresh_from_db()
    assert conv.next_response_due_at is None
    assert conv.sla_due_at == conv.resolution_due_at
    # the customer writes again: the next-response clock starts from that message
    again = MessageFactory(conversation=conv, text="@acme still broken", sent_at=timezone.now())
    from apps.routing.services import conversation_route

    conversation_route(conversation_id=conv.pk, message_ids=[again.pk])
    conv.refresh_from_db()
    assert conv.next_response_due_at == again.sent_at + dt.timedelta(minutes=20)
    assert conv.sla_due_at == conv.next_response_due_at
    assert sla_breaches_check(now=timezone.now() + dt.timedelta(minutes=25)) == [conv.pk]
    assert events(conv, "sla_breached")[0].data["target"] == "next_response"


def test_resolved_conversations_have_no_pending_sla(queue, mention, agent):
    from apps.inbox.services import conversation_status_set

    SlaPolicy.objects.create(name="p", first_response_minutes=30, resolution_minutes=600)
    conv = mention("@acme hi")
    conversation_status_set(conversation=conv, status="resolved", actor=agent)
    conversation_followup(conversation_id=conv.pk)
    conv.refresh_from_db()
    assert conv.sla_due_at is None
    assert sla_breaches_check(now=timezone.now() + dt.timedelta(days=2)) == []


def test_waiting_conversations_age_upward_until_answered(queue, mention, agent, minutes_ago):
    from apps.inbox.services import reply_create

    conv = mention("@acme where is my parcel", sent_at=minutes_ago(1))
    start = conv.priority
    assert priorities_age(now=timezone.now() + dt.timedelta(hours=3)) == 1
    conv.refresh_from_db()
    assert conv.priority == start + 18
    aged = events(conv, "priority_set")[-1]
    assert aged.data["why"] == "aging" and "waiting 181 min" in aged.data["reasons"][-1]
    assert Conversation.objects.filter(pk=conv.pk, priority_bucket__lte=conv.priority_bucket).exists()

    reply_create(conversation=conv, agent=agent, text="@c on it")
    priorities_age(now=timezone.now() + dt.timedelta(hours=4))
    conv.refresh_from_db()
    assert conv.priority == start  # answered: no more waiting points
    assert ConversationRouting.objects.get(pk=conv.pk).waiting_since is None
    assert priorities_age(now=timezone.now() + dt.timedelta(hours=5)) == 0


def test_aging_can_cross_a_bucket(queue, mention, minutes_ago):
    conv = mention("@acme my parcel is late and the tracking is broken", sent_at=minutes_ago(0))
    before = conv.priority_bucket
    priorities_age(now=timezone.now() + dt.timedelta(days=1))
    conv.refresh_from_db()
    assert conv.priority_bucket < before


def test_aging_a_backlog_costs_a_few_statements_a_batch_not_two_a_conversation(queue, mention, minutes_ago):
    """A team over capacity keeps thousands waiting: every 5 minutes each climbs. Written a batch
    at a time (row by row, 40,000 waiting held a routing worker ~15 s and locked their rows
    against ingest); each conversation still gets its own score."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    convs = [mention(f"@acme order {n} is late", sent_at=minutes_ago(n)) for n in range(1, 31)]
    before = {c.pk: c.priority for c in convs}
    with CaptureQueriesContext(connection) as queries:
        assert priorities_age(now=timezone.now() + dt.timedelta(hours=3)) == 30
    assert len(queries) <= 12  # the ids, then per batch: savepoint, locks, states, 2 writes, the trail
    after = dict(Conversation.objects.filter(pk__in=before).values_list("pk", "priority"))
    assert all(after[pk] > before[pk] for pk in before)
    assert ConversationRouting.objects.filter(pk__in=before, updated_at__gte=timezone.now() + dt.timedelta(hours=2)
                                              ).count() == 30
