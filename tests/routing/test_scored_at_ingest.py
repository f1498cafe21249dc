"""Language and sentiment are scored by ingest and stored with the message
(docs/performance-history.md item 20): routing reads them and never rewrites a message;
what is not routed yet is routing.UnroutedMessage, for English and other
languages alike; reports count a message once routing has given it a queue."""
import datetime as dt
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.connectors.providers.base import InboundMention
from apps.inbox.models import Conversation, ConversationEvent, Message
from apps.ingest.services import mentions_ingest
from apps.ops.selectors import reports_uncounted_age
from apps.reports.inbound import inbound_messages_record
from apps.reports.models import MetricEvent
from apps.routing.models import UnroutedMessage
from apps.routing.selectors import messages_unrouted
from apps.routing.services import conversations_route

pytestmark = pytest.mark.django_db

COMPLAINT = "@acme my parcel never arrived, awful service"
SPANISH = "Hola, mi pedido no ha llegado todavía y estoy muy molesto"


def _mention(ext, text, author):
    return InboundMention(external_id=ext, text=text, created_at=timezone.now(), author_external_id=author,
                          author_handle=f"h{author}", author_name="Someone", thread_id=ext)


def _ingest(account, django_capture_on_commit_callbacks):
    """Stores two mentions with their routing task held back (as if still queued)."""
    with mock.patch("apps.routing.services.conversations_route_later"), django_capture_on_commit_callbacks():
        result = mentions_ingest(account=account, mentions=[_mention("1", COMPLAINT, "41"),
                                                            _mention("2", SPANISH, "42")])
    return list(result.conversations.items())


def test_ingest_stores_the_scores_and_marks_the_messages_unrouted(twitter_account, django_capture_on_commit_callbacks):
    pairs = _ingest(twitter_account, django_capture_on_commit_callbacks)

    english, spanish = Message.objects.order_by("external_id")
    assert (english.language, english.sentiment_label) == ("en", "negative") and english.sentiment < 0
    assert (spanish.language, spanish.sentiment, spanish.sentiment_label) == ("es", None, "not_scored")
    # both wait for routing, the unscored language too
    assert sorted(messages_unrouted(older_than=dt.timedelta(0))) == sorted(pairs)


def test_routing_writes_no_message_row_and_routes_each_message_once(queue, twitter_account,
                                                                    django_capture_on_commit_callbacks):
    pairs = _ingest(twitter_account, django_capture_on_commit_callbacks)
    before = list(Message.objects.order_by("id").values_list("language", "sentiment", "sentiment_label",
                                                               "updated_at"))

    with CaptureQueriesContext(connection) as ctx:
        assert conversations_route(pairs=pairs) == []
    assert not [q["sql"] for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")
                and '"inbox_message"' in q["sql"]]

    assert list(Message.objects.order_by("id").values_list("language", "sentiment", "sentiment_label",
                                                             "updated_at")) == before
    english, spanish = (Conversation.objects.get(messages__external_id=x) for x in ("1", "2"))
    assert english.queue == queue and spanish.queue == queue  # routed, whatever the language
    assert english.last_sentiment < 0 and spanish.last_sentiment is None and spanish.language == "es"
    assert not UnroutedMessage.objects.exists()
    assert messages_unrouted(older_than=dt.timedelta(0)) == []

    routed = ConversationEvent.objects.filter(kind="routed").count()
    assert conversations_route(pairs=pairs) == []  # a redelivered task: nothing routed twice
    assert ConversationEvent.objects.filter(kind="routed").count() == routed == 2


def test_reports_count_a_message_once_routing_gave_it_a_queue(queue, twitter_account,
                                                              django_capture_on_commit_callbacks):
    pairs = _ingest(twitter_account, django_capture_on_commit_callbacks)

    inbound_messages_record()
    assert not MetricEvent.objects.filter(kind="msg_in").exists()  # scored, but not routed yet

    conversations_route(pairs=pairs)
    inbound_messages_record()
    events = {e.key: e for e in MetricEvent.objects.filter(kind="msg_in")}
    english, spanish = Message.objects.order_by("external_id")
    assert {e.queue_id for e in events.values()} == {queue.pk}
    assert events[f"in:{english.pk}"].value == english.sentiment and events[f"in:{spanish.pk}"].value is None


def test_a_message_routing_never_takes_is_counted_after_ten_minutes(twitter_account,
                                                                     django_capture_on_commit_callbacks):
    _ingest(twitter_account, django_capture_on_commit_callbacks)
    inbound_messages_record(now=timezone.now() + dt.timedelta(minutes=11))
    assert MetricEvent.objects.filter(kind="msg_in").count() == 2


def _ingest_routed(account, django_capture_on_commit_callbacks, ids):
    with mock.patch("apps.routing.services.conversations_route_later"), django_capture_on_commit_callbacks():
        result = mentions_ingest(account=account, mentions=[_mention(str(i), COMPLAINT, str(100 + i)) for i in ids])
    conversations_route(pairs=list(result.conversations.items()))


def test_messages_already_counted_never_crowd_out_new_ones(queue, twitter_account,
                                                           django_capture_on_commit_callbacks):
    """A run takes at most `limit` messages. The ones counted already must not be among them:
    when they were, a busy inbox (more than `limit` messages in the re-read window) had its
    new messages counted only ~10 minutes late, the report's inbound volume that far behind."""
    later = timezone.now() + dt.timedelta(minutes=1)
    _ingest_routed(twitter_account, django_capture_on_commit_callbacks, range(1, 9))
    assert inbound_messages_record(limit=5) == 5
    _ingest_routed(twitter_account, django_capture_on_commit_callbacks, range(9, 11))
    assert reports_uncounted_age(now=later) >= 59  # what /metrics shows an operator: the reports are behind
    assert inbound_messages_record(limit=5) == 5  # the 3 left and the 2 new, not the 5 counted again
    assert inbound_messages_record(limit=5) == 0
    assert reports_uncounted_age(now=later) == 0
    counted = set(MetricEvent.objects.filter(kind="msg_in").values_list("key", flat=True))
    assert counted == {f"in:{pk}" for pk in Message.objects.values_list("pk", flat=True)}
