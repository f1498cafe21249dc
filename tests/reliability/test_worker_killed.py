"""A worker SIGKILLed in the middle of work: the work is redone once, nothing is
lost, nothing is doubled. Real `celery worker` processes on our own Redis and the
test's PostgreSQL; the stand-in Twitter counts every post."""
import time

import psycopg
import pytest

from apps.connectors.models import ChannelAccount
from apps.contacts.models import SocialIdentity
from apps.inbox.models import Conversation, ConversationEvent, Message
from apps.inbox.services import reply_create
from tests.factories import ConversationFactory, MessageFactory

from .conftest import needs_real_services
from .procs import database_url_for_workers, wait_for

pytestmark = needs_real_services


@pytest.fixture
def thread(twitter_api, twitter_account):
    twitter_api.add_user("11", "alice")
    tweet = twitter_api.add_mention("@acme my order is late", author_id="11")
    conv = ConversationFactory(channel_account=twitter_account, identity__external_id="11", identity__handle="alice")
    MessageFactory(conversation=conv, external_id=tweet["id"], text=tweet["text"])
    return conv, tweet


def _queued_reply(conv, agent, capture):
    with capture(execute=False):  # we hand the task to *our* broker below
        return reply_create(conversation=conv, agent=agent, text="@alice so sorry, DM us your order number")


def _posts_seen(twitter_api):
    return [r for r in twitter_api.requests if r["method"] == "POST" and r["path"] == "/2/tweets"]


@pytest.mark.parametrize("kill", ["whole worker", "pool process"])
def test_killed_after_the_post_reached_the_network_reply_is_posted_once(
        kill, thread, agent, twitter_api, settings, workers, broker, django_capture_on_commit_callbacks):
    settings.PROVIDER_TIMEOUT_SECONDS = 3  # still waiting when it dies (killed within 1 s)
    conv, tweet = thread
    # Twitter stores the tweet, then holds the answer: the worker dies not knowing.
    twitter_api.add_fault("POST", "/2/tweets", delay=30, after_handling=True)
    worker = workers()
    msg = _queued_reply(conv, agent, django_capture_on_commit_callbacks)
    broker.send_task("outbound.send_message", [msg.pk])

    wait_for(lambda: twitter_api.posted, 20, what="the reply tweet stored by the network")
    assert Message.objects.get(pk=msg.pk).send_status == "sending"
    if kill == "whole worker":
        worker.kill()
        workers()  # a fresh worker takes the task back after the visibility timeout
    else:
        worker.kill_pool_process()  # the main process requeues it (task_reject_on_worker_lost)

    sent = wait_for(lambda: Message.objects.filter(pk=msg.pk, send_status="sent").first(), 60,
                    what="the reply marked sent")
    assert len(twitter_api.posted) == 1, "the reply was posted twice"
    assert len(_posts_seen(twitter_api)) == 1
    assert sent.external_id == twitter_api.posted[0]["id"]
    assert twitter_api.posted[0]["in_reply_to_tweet_id"] == tweet["id"]
    assert sent.send_attempts == 2  # redone once
    assert conv.events.filter(kind="reply_sent").count() == 1


def test_killed_before_the_post_reached_the_network_reply_is_posted_once(
        thread, agent, twitter_api, settings, workers, broker, django_capture_on_commit_callbacks):
    settings.PROVIDER_TIMEOUT_SECONDS = 3
    conv, tweet = thread
    # The request is held before Twitter handles it (and then dropped).
    twitter_api.add_fault("POST", "/2/tweets", delay=30, status=503)
    worker = workers()
    msg = _queued_reply(conv, agent, django_capture_on_commit_callbacks)
    broker.send_task("outbound.send_message", [msg.pk])
    wait_for(lambda: _posts_seen(twitter_api), 20, what="the post request in flight")
    worker.kill_pool_process()

    sent = wait_for(lambda: Message.objects.filter(pk=msg.pk, send_status="sent").first(), 60,
                    what="the reply marked sent")
    assert len(twitter_api.posted) == 1
    assert sent.external_id == twitter_api.posted[0]["id"]


def _blocked_on_lock(dbname) -> bool:
    with psycopg.connect(database_url_for_workers(), autocommit=True) as c:
        row = c.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                        [dbname]).fetchone()
    return row[0] > 0


@pytest.mark.parametrize("where", ["fetching", "storing"])
def test_worker_killed_mid_ingest_every_mention_stored_once(
        where, twitter_api, twitter_account, settings, workers, broker, postgres):
    settings.PROVIDER_TIMEOUT_SECONDS = 20
    for i in range(4):
        twitter_api.add_user(f"20{i}", f"cust{i}")
    tweets = [twitter_api.add_mention(f"@acme problem {n}", author_id=f"20{n % 4}") for n in range(12)]
    worker = workers()
    lock = None
    if where == "fetching":
        # the mentions request hangs; the worker dies waiting for it
        twitter_api.add_fault("GET", f"/2/users/{twitter_account.external_user_id}/mentions", delay=30, status=503)
        broker.send_task("connectors.poll_account", [twitter_account.pk])
        wait_for(lambda: twitter_api.requests, 20, what="the poll request")
    else:
        # inserts of messages wait on a table lock: the worker dies inside its
        # ingest transaction, after customers and conversations were written
        lock = psycopg.connect(database_url_for_workers())
        lock.execute("LOCK TABLE inbox_message IN SHARE MODE")
        broker.send_task("connectors.poll_account", [twitter_account.pk])
        wait_for(lambda: _blocked_on_lock(postgres.settings_dict["NAME"]), 20, what="ingest blocked on the lock")
    started = time.monotonic()
    worker.kill()
    if lock is not None:
        lock.rollback()
        lock.close()
    workers()  # the task comes back after the visibility timeout

    wait_for(lambda: Message.objects.filter(direction="in").count() >= len(tweets), 60, what="all mentions stored")
    redone_in = time.monotonic() - started
    wait_for(lambda: ChannelAccount.objects.get(pk=twitter_account.pk).poll_cursor.get("since_id"), 10)
    time.sleep(1.0)  # let any stray second delivery finish

    ids = list(Message.objects.filter(direction="in").values_list("external_id", flat=True))
    assert sorted(ids) == sorted(t["id"] for t in tweets), "a mention is missing or doubled"
    assert SocialIdentity.objects.count() == 4
    assert Conversation.objects.count() == 4  # one per customer, none left half-made
    assert ConversationEvent.objects.filter(kind="created").count() == 4
    assert ChannelAccount.objects.get(pk=twitter_account.pk).poll_cursor == {"since_id": tweets[-1]["id"]}
    assert redone_in < 30, f"redone after {redone_in:.1f}s"
