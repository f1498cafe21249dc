"""Routing rule expressions run on RE2 (issue 18, hostile input): a catastrophic pattern
such as `(a+)+$` (~77 s on 30 characters under Python's `re`) is matched in linear time,
patterns the engine refuses are a 400 / form error with the reason, and a rule saved
before that RE2 refuses is skipped by routing, logged, and marked on the rules page."""
import logging
import time

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.connectors.providers.base import InboundMention
from apps.inbox.models import Conversation, ConversationEvent, Queue
from apps.ingest.services import mentions_ingest
from apps.routing.models import RoutingRule

pytestmark = pytest.mark.django_db


def _ingest(account, text, ext, capture):
    """One mention through the real ingest service, routed after its commit as a worker does."""
    mention = InboundMention(external_id=ext, text=text, created_at=timezone.now(), author_external_id=f"a{ext}",
                             author_handle=f"h{ext}", author_name="Someone", thread_id=ext)
    with capture(execute=True):
        mentions_ingest(account=account, mentions=[mention], route_now=True)
    return Conversation.objects.get(messages__external_id=ext)


@pytest.fixture
def spam_queue(team):
    return Queue.objects.create(name="Spam check", team=team)


def test_a_catastrophic_pattern_is_matched_in_linear_time_through_routing(
        api_client, supervisor, queue, spam_queue, twitter_account, django_capture_on_commit_callbacks):
    api_client.force_authenticate(supervisor)
    resp = api_client.post("/api/v1/rules/", {"name": "Screams", "regex": "(a+)+$", "set_queue": spam_queue.pk},
                           format="json")
    assert resp.status_code == 201, resp.content

    started = time.perf_counter()
    near_miss = _ingest(twitter_account, "a" * 30 + "!", "1", django_capture_on_commit_callbacks)
    # 100k characters; the rule reads the first 5,000 (200 near misses, each one ~77 s under re)
    long_miss = _ingest(twitter_account, ("a" * 24 + "!") * 4000, "2", django_capture_on_commit_callbacks)
    assert time.perf_counter() - started < 5
    hit = _ingest(twitter_account, "aaaa", "3", django_capture_on_commit_callbacks)
    cut = _ingest(twitter_account, "a" * 100_000 + "!", "4", django_capture_on_commit_callbacks)

    assert near_miss.queue == queue and long_miss.queue == queue  # no match: the default queue
    assert hit.queue == spam_queue
    assert cut.queue == spam_queue  # `$` is the end of the part read (docs/routing.md)
    routed = ConversationEvent.objects.get(conversation=hit, kind="routed")
    assert routed.data["rule"] == "Screams" and routed.data["why"] == ['regex matched "aaaa"']


def test_the_rule_engine_matches_100k_characters_under_a_second():
    from apps.routing.rules import RuleContext, regex_compile, rule_matches

    started = time.perf_counter()
    assert regex_compile("(a+)+$").search("a" * 100_000 + "!") is None  # the engine, on the whole text
    rule = RoutingRule(name="r", regex="(a+)+$", channels=[], keywords=[])
    ctx = RuleContext(text="a" * 100_000 + "!", channel="twitter", channel_account_id=1, language="en",
                      sentiment_label="neutral", followers=0)
    assert rule_matches(rule, ctx)[0] is True  # on the first 5,000 characters
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize("pattern, reason", [
    (r"(?<!not )refund", "look-around is not supported"),
    (r"refund(?= now)", "look-around is not supported"),
    (r"(\w+) \1", "back-references are not supported"),
    (r"end\Z", r"write \z for the end of the text"),
    ("(oops", "missing )"),
    (r"\pL{1000}", "pattern too large"),
])
def test_patterns_the_engine_refuses_are_a_400_with_the_reason(api_client, supervisor, pattern, reason):
    api_client.force_authenticate(supervisor)
    resp = api_client.post("/api/v1/rules/", {"name": "x", "regex": pattern}, format="json")
    assert resp.status_code == 400, resp.content
    detail = resp.json()["detail"]
    assert "regular expression does not compile" in detail and reason in detail
    assert not RoutingRule.objects.exists()


def test_an_overlong_pattern_is_refused(api_client, supervisor):
    api_client.force_authenticate(supervisor)
    resp = api_client.post("/api/v1/rules/", {"name": "x", "regex": "a" * 501}, format="json")
    assert resp.status_code == 400 and "regex" in resp.json()["detail"]
    assert not RoutingRule.objects.exists()


def test_an_update_to_a_refused_pattern_is_a_400_and_keeps_the_rule(api_client, supervisor):
    rule = RoutingRule.objects.create(name="Refunds", regex="refund")
    api_client.force_authenticate(supervisor)
    resp = api_client.patch(f"/api/v1/rules/{rule.pk}/", {"regex": "(?<=my )refund"}, format="json")
    assert resp.status_code == 400 and "look-around" in resp.json()["detail"]
    rule.refresh_from_db()
    assert rule.regex == "refund"


@pytest.fixture
def sup_client(client, supervisor):
    client.force_login(supervisor)
    return client


def test_the_page_form_refuses_look_around_and_accepts_a_catastrophic_looking_pattern(sup_client):
    form = {"name": "bad", "regex": "(?<!not )refund", "hours": "any", "visibility": "any"}
    resp = sup_client.post(reverse("routing:rule-new"), form)
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "The regular expression does not compile" in html and "look-around is not supported" in html
    assert not RoutingRule.objects.exists()

    resp = sup_client.post(reverse("routing:rule-new"), {**form, "name": "screams", "regex": "(a+)+$"})
    assert resp.status_code == 302
    assert RoutingRule.objects.get().regex == "(a+)+$"


def test_a_stored_rule_the_engine_refuses_is_skipped_logged_and_marked(
        sup_client, queue, spam_queue, twitter_account, django_capture_on_commit_callbacks, caplog):
    # saved before rules ran on RE2 (Python's re took it)
    RoutingRule.objects.create(name="Old lookbehind", position=1, regex=r"(?<!not )refund", set_queue=spam_queue)
    RoutingRule.objects.create(name="Refund tag", position=2, regex=r"refund\s+now", add_tags=["refund"])

    with caplog.at_level(logging.WARNING, logger="apps.routing.rule_actions"):
        conversation = _ingest(twitter_account, "@acme REFUND   now please", "9", django_capture_on_commit_callbacks)

    assert conversation.queue == queue  # the old rule did not apply
    assert list(conversation.tags.values_list("name", flat=True)) == ["refund"]  # the next one did
    error = ConversationEvent.objects.get(conversation=conversation, kind="rule_error")
    assert error.data["rule"] == "Old lookbehind" and "look-around" in error.data["error"]
    assert any("Old lookbehind" in r.getMessage() or "look-around" in r.getMessage() for r in caplog.records)

    html = sup_client.get(reverse("routing:rules")).content.decode()
    assert html.count("skipped by routing") == 1 and "look-around is not supported" in html
