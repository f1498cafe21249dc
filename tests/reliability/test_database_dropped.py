"""PostgreSQL drops the workers' connections (pg_terminate_backend: a restart, a
failover, an admin): the task in flight is retried, nothing is lost or doubled."""
import time

import psycopg
import pytest

from apps.connectors.models import ChannelAccount
from apps.inbox.models import Conversation, Message
from apps.inbox.services import reply_create
from tests.factories import ConversationFactory, MessageFactory

from .conftest import needs_real_services
from .procs import database_url_for_workers, terminate_worker_connections, wait_for, worker_connections

pytestmark = needs_real_services


def _mentions(twitter_api, n, authors=3):
    for i in range(authors):
        twitter_api.add_user(f"30{i}", f"buyer{i}")
    return [twitter_api.add_mention(f"@acme broken thing {k}", author_id=f"30{k % authors}") for k in range(n)]


def _stored_ids():
    return sorted(Message.objects.filter(direction="in").values_list("external_id", flat=True))


def test_connection_dropped_mid_ingest_the_poll_is_retried(twitter_api, twitter_account, workers, broker, postgres):
    tweets = _mentions(twitter_api, 9)
    worker = workers()
    lock = psycopg.connect(database_url_for_workers())
    lock.execute("LOCK TABLE inbox_message IN SHARE MODE")
    broker.send_task("connectors.poll_account", [twitter_account.pk])
    wait_for(lambda: worker_connections("lock"), 20, what="the ingest waiting inside its transaction")
    assert terminate_worker_connections() >= 1
    lock.rollback()
    lock.close()

    wait_for(lambda: len(_stored_ids()) >= len(tweets), 30, what="every mention stored after the retry")
    time.sleep(0.5)
    assert _stored_ids() == sorted(t["id"] for t in tweets)
    assert Conversation.objects.count() == 3
    assert ChannelAccount.objects.get(pk=twitter_account.pk).poll_cursor == {"since_id": tweets[-1]["id"]}
    assert "connectors.poll_account" in worker.log() and "Retry in" in worker.log()


def test_idle_connection_dropped_between_tasks_next_task_reconnects(twitter_api, twitter_account, workers, broker,
                                                                     postgres):
    first = _mentions(twitter_api, 2)
    workers()
    broker.send_task("connectors.poll_account", [twitter_account.pk])
    wait_for(lambda: len(_stored_ids()) == 2, 20, what="first poll stored")
    wait_for(lambda: worker_connections(), 10, what="the worker's persistent connection (CONN_MAX_AGE)")
    assert terminate_worker_connections() >= 1

    second = [twitter_api.add_mention("@acme and another thing", author_id="300")]
    broker.send_task("connectors.poll_account", [twitter_account.pk])
    wait_for(lambda: len(_stored_ids()) == 3, 20, what="second poll stored on a fresh connection")
    assert _stored_ids() == sorted(t["id"] for t in first + second)


def test_connection_dropped_while_sending_the_reply_is_sent_once(twitter_api, twitter_account, agent, settings,
                                                                 workers, broker, postgres,
                                                                 django_capture_on_commit_callbacks):
    settings.PROVIDER_TIMEOUT_SECONDS = 3
    twitter_api.add_user("11", "alice")
    tweet = twitter_api.add_mention("@acme hello?", author_id="11")
    conv = ConversationFactory(channel_account=twitter_account, identity__external_id="11")
    MessageFactory(conversation=conv, external_id=tweet["id"], text=tweet["text"])
    # the tweet is stored at once, the answer comes 1.5 s later: the connection dies meanwhile
    twitter_api.add_fault("POST", "/2/tweets", delay=1.5, after_handling=True)
    workers()
    with django_capture_on_commit_callbacks(execute=False):
        msg = reply_create(conversation=conv, agent=agent, text="@alice hi, how can we help?")
    broker.send_task("outbound.send_message", [msg.pk])
    wait_for(lambda: twitter_api.posted, 20, what="the post")
    terminate_worker_connections()

    sent = wait_for(lambda: Message.objects.filter(pk=msg.pk, send_status="sent").first(), 40, what="reply sent")
    assert len(twitter_api.posted) == 1
    assert sent.external_id == twitter_api.posted[0]["id"]
