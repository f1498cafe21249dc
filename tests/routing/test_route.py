"""A mention after ingest: rules, priority, SLA and assignment, each visible in the audit trail."""
import datetime as dt

import pytest
from django.utils import timezone

from apps.inbox.models import CannedResponse, Message, Queue, Tag
from apps.routing.configuration import rule_create
from apps.routing.models import RoutingRule, SlaPolicy
from apps.routing.services import conversation_route
from tests.factories import MessageFactory, QueueFactory

from .conftest import events

pytestmark = pytest.mark.django_db


@pytest.fixture
def sla(queue):
    return SlaPolicy.objects.create(name="Standard", first_response_minutes=60, next_response_minutes=30,
                                    resolution_minutes=24 * 60)


def test_mention_is_routed_prioritised_given_sla_and_assigned(queue, sla, make_agent, mention,
                                                              django_assert_max_num_queries):
    queue.assignment_mode = Queue.AssignmentMode.ROUND_ROBIN
    queue.save()
    agent = make_agent()
    conv = mention("@acme my order never arrived, awful service. I want a refund!", followers=25_000)

    assert conv.queue == queue
    assert conv.assignee == agent
    assert conv.priority_bucket <= 1 and conv.priority > 55
    assert conv.first_response_due_at == conv.cycle_started_at + dt.timedelta(minutes=60)
    assert conv.resolution_due_at == conv.cycle_started_at + dt.timedelta(days=1)
    assert conv.sla_due_at == conv.first_response_due_at and not conv.sla_breached
    assert conv.last_sentiment < 0 and conv.language == "en"

    routed, = events(conv, "routed")
    assert routed.data["why"] == ["no rule chose a queue"] and routed.data["actions"] == [f"queue {queue.name}"]
    prio, = events(conv, "priority_set")
    assert prio.data["score"] == conv.priority
    assert any('money term "refund"' in r for r in prio.data["reasons"])
    assert any("25,000 followers" in r for r in prio.data["reasons"])
    sla_set, = events(conv, "sla_set")
    assert sla_set.data["policy"] == "Standard"
    assigned, = events(conv, "assigned")
    assert assigned.data["by"] == "round_robin" and assigned.data["to"] == agent.username


def test_the_thread_audit_trail_says_why_in_words(queue, make_agent, mention, client, supervisor):
    queue.assignment_mode = Queue.AssignmentMode.LEAST_LOADED
    queue.save()
    make_agent()
    SlaPolicy.objects.create(name="Standard", first_response_minutes=60)
    RoutingRule.objects.create(name="Refunds", keywords=["refund"], add_tags=["refund"])
    conv = mention("@acme I want a refund")
    client.force_login(supervisor)
    html = client.get(f"/inbox/c/{conv.pk}/").content.decode()
    assert 'keyword &quot;refund&quot; → tags refund' in html or 'keyword "refund" → tags refund' in html
    assert "30 base" in html and "money term" in html
    assert "Standard: first response by" in html
    assert "least loaded in" in html


def test_routing_query_count_is_bounded(queue, sla, make_agent, mention, django_assert_max_num_queries):
    queue.assignment_mode = Queue.AssignmentMode.LEAST_LOADED
    queue.save()
    make_agent(), make_agent()
    for i in range(3):
        RoutingRule.objects.create(name=f"r{i}", keywords=[f"word{i}"], add_tags=["x"])
    conv = mention(route=False)
    message = conv.messages.get()
    with django_assert_max_num_queries(45):
        conversation_route(conversation_id=conv.pk, message_ids=[message.pk])


def test_rules_run_in_order_and_stop(queue, mention, supervisor):
    billing = QueueFactory(team=queue.team, name="Billing")
    legal = QueueFactory(team=queue.team, name="Legal")
    rule_create(actor=supervisor, name="Refunds", position=10, keywords=["refund"], set_queue=billing,
                add_tags=["refund"])
    rule_create(actor=supervisor, name="Lawyers", position=20, keywords=["lawyer"], set_queue=legal,
                set_priority_bucket=0, stop=True)
    rule_create(actor=supervisor, name="Never reached", position=30, add_tags=["late"])

    conv = mention("@acme refund me or my lawyer calls")
    assert conv.queue == legal
    assert conv.priority_bucket == 0
    assert set(conv.tags.values_list("name", flat=True)) == {"refund"}
    routed = events(conv, "routed")
    assert [e.data["rule"] for e in routed] == ["Refunds", "Lawyers"]
    assert routed[1].data["why"] == ['keyword "lawyer"']
    assert "stop" in routed[1].data["actions"]


def test_a_broken_rule_is_logged_and_skipped(queue, mention):
    RoutingRule.objects.create(name="Broken", position=1, regex="(unclosed")  # saved around the API's check
    RoutingRule.objects.create(name="Tagger", position=2, add_tags=["seen"])
    conv = mention("@acme hi")
    error, = events(conv, "rule_error")
    assert error.data["rule"] == "Broken" and "regular expression" in error.data["error"]
    assert conv.tags.filter(name="seen").exists()
    assert conv.queue == queue


def test_spam_rule_closes_without_assigning(queue, make_agent, mention):
    queue.assignment_mode = Queue.AssignmentMode.ROUND_ROBIN
    queue.save()
    make_agent()
    RoutingRule.objects.create(name="Crypto spam", regex=r"free\s+crypto", disposition="spam", stop=True)
    conv = mention("@acme FREE   crypto giveaway click here")
    assert conv.status == "closed" and conv.is_spam
    assert conv.assignee is None and conv.sla_due_at is None
    assert events(conv, "status_changed")[0].data["reason"] == "spam (routing rule)"


def test_auto_reply_is_a_bot_message_that_is_not_a_first_response(queue, mention):
    canned = CannedResponse.objects.create(shortcut="ack", title="Ack",
                                           text="Hi {{ customer.name }}, we got your message and reply soon.")
    RoutingRule.objects.create(name="Night", auto_reply=canned)
    conv = mention("@acme anyone there?", route=False)
    conv.customer.name = "Dana"
    conv.customer.save()
    conversation_route(conversation_id=conv.pk, message_ids=[conv.messages.get().pk])
    conv.refresh_from_db()
    reply = Message.objects.get(conversation=conv, direction="out")
    assert reply.is_bot and reply.text == "Hi Dana, we got your message and reply soon."
    assert conv.first_response_at is None and conv.status == "new"


def test_conditions_language_sentiment_followers_tags_visibility(queue, mention, twitter_account):
    spanish = QueueFactory(team=queue.team, name="Spanish")
    RoutingRule.objects.create(name="es", languages=["es"], set_queue=spanish)
    RoutingRule.objects.create(name="angry influencer", sentiments=["negative"], min_followers=10_000,
                               add_tags=["influencer"])
    RoutingRule.objects.create(name="vip tag", customer_tags=["gold"], add_tags=["gold"])
    RoutingRule.objects.create(name="dm", visibility="private", add_tags=["dm"])
    RoutingRule.objects.create(name="this account", add_tags=["acct"]).channel_accounts.set([twitter_account])
    RoutingRule.objects.create(name="other channel", channels=["mastodon"], add_tags=["masto"])

    es = mention("Hola, mi pedido no ha llegado todavía y estoy muy molesto")
    assert es.queue == spanish and es.language == "es"
    assert es.messages.get().sentiment_label == "not_scored"

    angry = mention("@acme this is terrible, awful, broken", followers=50_000)
    small = mention("@acme this is terrible, awful, broken", followers=50)
    assert angry.tags.filter(name="influencer").exists() and not small.tags.filter(name="influencer").exists()

    gold = mention("@acme hi", route=False, is_public=False)
    gold.customer.tags = ["gold"]
    gold.customer.save()
    conversation_route(conversation_id=gold.pk, message_ids=[gold.messages.get().pk])
    assert set(gold.tags.values_list("name", flat=True)) == {"gold", "dm", "acct"}
    assert not Tag.objects.filter(name="masto").exists()


def test_business_hours_condition(queue, mention, supervisor):
    from apps.routing.configuration import business_hours_set

    closed_all_week = {d: [] for d in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}
    business_hours_set(team=queue.team, actor=supervisor, time_zone="Europe/Paris", schedule=closed_all_week)
    RoutingRule.objects.create(name="after hours", hours="outside", add_tags=["after-hours"])
    RoutingRule.objects.create(name="in hours", hours="inside", add_tags=["in-hours"])
    conv = mention("@acme hello?")
    assert list(conv.tags.values_list("name", flat=True)) == ["after-hours"]
    assert events(conv, "routed")[0].data["why"] == ["outside business hours"]


def test_a_second_message_in_the_cycle_rescored_but_rules_not_rerun(queue, mention):
    RoutingRule.objects.create(name="Tag all", add_tags=["t"])
    conv = mention("@acme where is my parcel")
    first_score, routed = conv.priority, len(events(conv, "routed"))
    later = MessageFactory(conversation=conv, text="@acme hello?? this is URGENT, site is down, I want a refund")
    conversation_route(conversation_id=conv.pk, message_ids=[later.pk])
    conv.refresh_from_db()
    assert conv.priority > first_score
    assert len(events(conv, "routed")) == routed == 2  # the rule, then the default queue
    assert conv.tags.count() == 1
    assert len(events(conv, "priority_set")) == 2


def test_manual_bucket_survives_rescoring(queue, mention, supervisor):
    from apps.inbox.services import conversation_priority_set

    conv = mention("@acme small question")
    conversation_priority_set(conversation=conv, bucket=0, actor=supervisor)
    later = MessageFactory(conversation=conv, text="@acme thanks, lovely people")
    conversation_route(conversation_id=conv.pk, message_ids=[later.pk])
    conv.refresh_from_db()
    assert conv.priority_bucket == 0
    assert events(conv, "priority_set")[-1].data.get("kept_manual_bucket") is True


def test_no_queue_at_all_still_routes(db, mention):
    conv = mention("@acme hi")
    assert conv.queue is None
    assert events(conv, "routed")[0].data["why"] == ["no rule chose a queue; no default queue"]
    assert conv.priority == 35  # base + public


def test_reopened_goes_back_to_last_agent_if_online_else_queue(queue, make_agent, mention):
    from apps.ingest.services import _conversation_reopen

    queue.assignment_mode = Queue.AssignmentMode.ROUND_ROBIN
    queue.save()
    first, other = make_agent(), make_agent()
    conv = mention("@acme help")
    assert conv.assignee == first
    for presence, expected in (("online", first), ("offline", other)):
        conv.refresh_from_db()
        conv.status = "resolved"
        conv.assignee = first
        conv.save()
        first.presence = presence
        first.save()
        later = timezone.now() + dt.timedelta(minutes=1)
        _conversation_reopen(conv, later)
        conv.save()
        message = MessageFactory(conversation=conv, text="@acme it broke again", sent_at=later)
        conversation_route(conversation_id=conv.pk, message_ids=[message.pk])
        conv.refresh_from_db()
        assert conv.assignee == expected
    by = [e.data["by"] for e in events(conv, "assigned")]
    assert by == ["round_robin", "last_assignee", "round_robin"]
