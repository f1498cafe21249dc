"""A customer's new top-level post starts its own conversation unless it continues one: a reply,
a platform thread, or a post within the account's thread window of their last message. The list
shows the latest customer message, the one priority and sentiment come from."""
import datetime as dt

import pytest
from django.utils import timezone

from apps.connectors.providers.base import InboundMention
from apps.inbox.models import Conversation
from apps.ingest.services import IngestResult, mention_store, mentions_ingest

pytestmark = pytest.mark.django_db
T0 = timezone.now() - dt.timedelta(days=1)


def post(ext, minutes, text, reply_to="", thread=""):
    return InboundMention(external_id=ext, text=text, created_at=T0 + dt.timedelta(minutes=minutes),
                          author_external_id="42", author_handle="bob", author_name="Bob",
                          thread_id=thread or ext, in_reply_to_external_id=reply_to)


def ingest_one_by_one(account, mentions):
    for m in mentions:
        mention_store(account=account, mention=m, result=IngestResult())


def ingest_as_batches(account, mentions):
    for m in mentions:
        mentions_ingest(account=account, mentions=[m])


def ingest_as_one_batch(account, mentions):
    mentions_ingest(account=account, mentions=mentions)


PATHS = [ingest_one_by_one, ingest_as_batches, ingest_as_one_batch]


@pytest.mark.parametrize("ingest", PATHS)
def test_unrelated_posts_hours_apart_are_separate_conversations(ingest, twitter_account,
                                                                django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        ingest(twitter_account, [
            post("1", 0, "@acme I was charged twice for order 5521"),
            post("2", 5, "@acme and nobody answers the phone"),  # within 30 min: the same matter
            post("3", 180, "@acme any plans for a dark mode?"),
            post("4", 24 * 60 - 60, "@acme the delivery driver was super friendly today, shout out!"),
        ])
    texts = [list(c.messages.order_by("sent_at").values_list("external_id", flat=True))
             for c in Conversation.objects.order_by("id")]
    assert texts == [["1", "2"], ["3"], ["4"]]


@pytest.mark.parametrize("ingest", PATHS)
def test_a_reply_continues_its_conversation_whatever_the_gap(ingest, twitter_account,
                                                             django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        ingest(twitter_account, [post("1", 0, "@acme my parcel is lost"),
                                 post("2", 600, "@acme still nothing", reply_to="1", thread="1")])
    assert Conversation.objects.count() == 1


def test_a_window_of_zero_never_joins_and_a_long_one_does(twitter_account, django_capture_on_commit_callbacks):
    twitter_account.thread_window_minutes = 0
    twitter_account.save()
    with django_capture_on_commit_callbacks():
        mentions_ingest(account=twitter_account, mentions=[post("1", 0, "@acme a"), post("2", 1, "@acme b")])
    assert Conversation.objects.count() == 2
    twitter_account.thread_window_minutes = 24 * 60
    twitter_account.save()
    with django_capture_on_commit_callbacks():
        mentions_ingest(account=twitter_account, mentions=[post("3", 600, "@acme c")])
    assert Conversation.objects.count() == 2  # joined the newest open one


@pytest.mark.parametrize("ingest", PATHS)
def test_the_list_shows_the_latest_customer_message(ingest, twitter_account, agent, queue, client,
                                                    django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ingest(twitter_account, [
            post("1", 0, "@acme my order arrived broken, this is awful"),
            post("2", 10, "@acme update: the driver just brought a new one, thanks!", reply_to="1", thread="1"),
        ])
    conversation = Conversation.objects.get()
    conversation.queue = queue
    conversation.save()
    assert conversation.subject.startswith("@acme my order arrived broken")
    assert conversation.latest_text == "@acme update: the driver just brought a new one, thanks!"
    client.force_login(agent)
    page = client.get("/inbox/").content.decode()
    assert "the driver just brought a new one" in page
    assert "my order arrived broken" not in page


def test_an_older_post_arriving_late_does_not_replace_the_latest(twitter_account, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        mentions_ingest(account=twitter_account, mentions=[post("2", 10, "@acme newer", reply_to="1", thread="1")])
        mentions_ingest(account=twitter_account, mentions=[post("1", 0, "@acme older")])
    assert Conversation.objects.get(external_thread_id="1").latest_text == "@acme newer"
