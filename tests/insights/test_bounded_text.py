"""Every CPU-heavy text function reads a bounded prefix (issue 18, hostile input): a
100k-character message kept VADER busy ~50 s inside ingest's transaction. Whatever the
edge lets through, language, sentiment, topics, keywords, urgency terms and rule
conditions finish fast, and a huge message is ingested and routed in reasonable time."""
import time

import pytest
from django.utils import timezone

from apps.connectors.providers.base import InboundMention
from apps.inbox.models import Conversation, ConversationEvent, Message
from apps.ingest.services import mentions_ingest
from apps.insights.bounds import ANALYZED_CHARS
from apps.insights.language import language_detect
from apps.insights.sentiment import sentiment_score
from apps.insights.services import text_score
from apps.reports import themes
from apps.routing.models import RoutingRule
from apps.routing.rules import RuleContext, rule_matches
from apps.routing.scoring import urgency_terms

MILLION = 1_000_000
HOSTILE = {
    "complaint": ("My parcel never arrived, awful service, I want a refund #fail @acme ", MILLION),
    "emoji": ("😀😡👍", MILLION),  # each emoji becomes words for VADER: 2,000 took ~4 s
    "one word": ("a", MILLION),
    "digits": ("1 ", MILLION),  # the phone mask's pattern
    "but": ("but great awful good bad ", MILLION),  # VADER's but-check
}


def _text(unit, size):
    return (unit * (size // len(unit) + 1))[:size]


@pytest.mark.parametrize("name", HOSTILE)
def test_every_text_analyser_on_a_million_characters_is_fast(name):
    text = _text(*HOSTILE[name])
    started = time.perf_counter()
    sentiment_score(text)
    language_detect(text)
    text_score(text)
    themes.topics_of(text), themes.hashtags_of(text), themes.keywords_of(text), themes.churn_words_in(text)
    themes.mask(text)
    urgency_terms(text)
    rule = RoutingRule(name="r", keywords=["refund", "lawyer"], regex=r"(\w+\s?)+$", channels=[])
    rule_matches(rule, RuleContext(text=text, channel="twitter", channel_account_id=1, language="en",
                                   sentiment_label="negative", followers=0))
    assert time.perf_counter() - started < 2


def test_what_is_read_is_the_start_of_the_text():
    head = "My parcel never arrived, awful service, I want a refund. "
    text = head + "Thank you, lovely, great. " * 40_000
    assert sentiment_score(text) == sentiment_score(text[:ANALYZED_CHARS])
    assert sentiment_score(text).label == sentiment_score(text[:ANALYZED_CHARS]).label
    assert "billing" in themes.topics_of(text)
    assert "refund" in urgency_terms(text).values()
    late = "x" * ANALYZED_CHARS + " I will call my lawyer"
    assert urgency_terms(late) == {}  # past the part read
    assert len(themes.mask(text)) == 280


@pytest.mark.django_db
def test_a_100k_character_message_is_ingested_and_routed_in_reasonable_time(
        settings, queue, twitter_account, django_capture_on_commit_callbacks):
    settings.INGEST_MAX_TEXT_CHARS = MILLION  # this test is about the analysers, not the edge's cap
    text = _text("@acme my parcel never arrived, awful 😡 service, refund now! ", 100_000)
    mention = InboundMention(external_id="big", text=text, created_at=timezone.now(), author_external_id="a1",
                             author_handle="angry", author_name="Angry", thread_id="big")
    started = time.perf_counter()
    with django_capture_on_commit_callbacks(execute=True):
        mentions_ingest(account=twitter_account, mentions=[mention], route_now=True)
    assert time.perf_counter() - started < 5  # ~50 s of VADER before

    message = Message.objects.get(external_id="big")
    assert len(message.text) == 100_000  # stored whole
    assert (message.language, message.sentiment_label) == ("en", "negative")
    conversation = Conversation.objects.get(pk=message.conversation_id)
    assert conversation.queue == queue
    assert ConversationEvent.objects.filter(conversation=conversation, kind="routed").exists()
    priority = ConversationEvent.objects.get(conversation=conversation, kind="priority_set")
    assert any("money" in reason or "refund" in reason for reason in priority.data["reasons"])
