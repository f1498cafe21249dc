"""Redis restarted under load: workers reconnect and no mention is lost.

Polled mentions survive any Redis (the network and the cursor in PostgreSQL are
the record: a lost poll task is simply polled again). The pushed mentions here
are sent as bare ingest.mentions tasks, which exist only in Redis, so they need
a Redis that keeps its data (AOF); the sender retries until Redis takes the
task. (Webhooks go through PostgreSQL first and survive an empty Redis:
test_push_durable.py.)

The drain used to time out now and then (issue 9): once the load stopped, the
helper that sends polls returned without sending, so mentions added after the
last poll of the load were never fetched; the test passed only when a late poll
happened to run after the last mention. Polls are now sent during the drain.
It still failed about 1 run in 4 (issue 8): a pushed task popped by the worker
just as Redis died was dropped by kombu before it was recorded as unacked;
cxinbox/broker.py now runs it (the last two tests here)."""
import datetime as dt
import signal
import threading
import time

import pytest
from django.utils import timezone

from apps.connectors.models import ChannelAccount
from apps.connectors.providers.base import InboundMention, mention_to_dict
from apps.inbox.models import Conversation, Message

from .conftest import needs_real_services
from .procs import RedisServer, client_app, wait_for

pytestmark = needs_real_services


class Load:
    """Mentions arriving on the stand-in network and by push, and a beat sending polls."""

    def __init__(self, twitter_api, account, broker, push: bool):
        self.twitter_api, self.account, self.broker, self.push = twitter_api, account, broker, push
        self.sent_ids: list[str] = []
        self.publish_errors = 0
        for i in range(10):
            twitter_api.add_user(f"40{i}", f"shopper{i}")

    def _send(self, name, args, *, retry: bool):
        """A push is retried until Redis takes it, as a network retries a webhook that
        failed; a poll is tried once, as beat does (its next tick comes soon)."""
        while True:
            try:
                self.broker.send_task(name, args)
                return True
            except Exception:  # noqa: BLE001 - Redis is down
                self.publish_errors += 1
                if not retry:
                    return False
                time.sleep(0.2)

    def run(self, seconds: float):
        n, deadline, next_poll = 0, time.monotonic() + seconds, 0.0
        while time.monotonic() < deadline:
            n += 1
            tweet = self.twitter_api.add_mention(f"@acme order {n} is late", author_id=f"40{n % 10}")
            self.sent_ids.append(tweet["id"])
            if self.push and n % 2 == 0:
                ext = f"push-{n}"
                mention = InboundMention(external_id=ext, text=f"@acme pushed {n}", created_at=timezone.now(),
                                         author_external_id=f"40{n % 10}", author_handle=f"shopper{n % 10}")
                if self._send("ingest.mentions", [self.account.pk, [mention_to_dict(mention)]], retry=True):
                    self.sent_ids.append(ext)
            if time.monotonic() >= next_poll:
                self._send("connectors.poll_account", [self.account.pk], retry=False)
                next_poll = time.monotonic() + 0.5
            time.sleep(0.05)

    def drain(self, timeout=150):
        def all_in():
            """every mention sent in, stored"""
            if Message.objects.filter(direction="in").count() >= len(self.sent_ids):
                return True
            self._send("connectors.poll_account", [self.account.pk], retry=False)
            return False
        wait_for(all_in, timeout, interval=0.5)


@pytest.mark.parametrize("persistent", [False, True], ids=["no-persistence", "aof"])
def test_redis_restarted_under_load_loses_no_mention(persistent, twitter_api, twitter_account, queue, workers,
                                                     tmp_path, postgres):
    redis = RedisServer(appendonly=persistent, workdir=tmp_path / "redis-load").start()
    broker = client_app(redis.url)
    try:
        worker = workers(concurrency=2, broker_url=redis.url)
        load = Load(twitter_api, twitter_account, broker, push=persistent)
        runner = threading.Thread(target=load.run, args=(12,))
        runner.start()
        for _ in range(2):  # two restarts while the load runs
            time.sleep(3.5)
            redis.restart(sig=signal.SIGKILL, down_for=1.0)
        runner.join()
        try:
            load.drain()
        except AssertionError as exc:  # say which mentions and what the worker logged
            stored = set(Message.objects.filter(direction="in").values_list("external_id", flat=True))
            missing = sorted(set(load.sent_ids) - stored)
            raise AssertionError(f"{exc}; missing {missing[:20]}; worker log:\n{worker.log()[-4000:]}") from exc
        time.sleep(1.0)

        stored = list(Message.objects.filter(direction="in").values_list("external_id", flat=True))
        assert len(stored) == len(set(stored)), "a mention was stored twice"
        assert sorted(stored) == sorted(load.sent_ids), "a mention was lost"
        assert load.publish_errors > 0, "Redis was never seen down: the test did not test anything"
        assert worker.proc.poll() is None, "the worker died instead of reconnecting"
        assert "Unrecoverable error" not in worker.log()
        # The cursor reaches the newest mention. With the lock lost in a restart two polls may
        # run at once; the one that finishes last keeps the cursor it started from, so it can
        # stay one poll behind (never back): the next poll catches up and its refetch dedupes.
        newest = max(load.sent_ids, key=lambda i: (i.isdigit(), len(i), i))

        def cursor_at_newest():
            """the poll cursor at the newest mention"""
            if ChannelAccount.objects.get(pk=twitter_account.pk).poll_cursor.get("since_id") == newest:
                return True
            load._send("connectors.poll_account", [twitter_account.pk], retry=False)
            return False
        wait_for(cursor_at_newest, 20, interval=1.0)
        assert Message.objects.filter(direction="in").count() == len(load.sent_ids), "a refetch stored a duplicate"
        # every conversation reaches its queue, even if its routing task was lost in the restart
        wait_for(lambda: not Conversation.objects.filter(queue__isnull=True).exists(), 30,
                 what="every conversation routed")
    finally:
        broker.close()
        redis.stop()


def test_worker_survives_a_redis_restart_with_a_task_in_flight(twitter_api, twitter_account, agent, settings,
                                                                workers, redis_server, postgres,
                                                                django_capture_on_commit_callbacks):
    """The restart hits while an acks_late task runs: kombu's channel close used to
    raise and the worker exited ("Unrecoverable error"); cxinbox/broker.py repairs it."""
    from apps.inbox.services import reply_create
    from tests.factories import ConversationFactory, MessageFactory

    settings.PROVIDER_TIMEOUT_SECONDS = 10
    twitter_api.add_user("11", "alice")
    tweet = twitter_api.add_mention("@acme hello", author_id="11")
    conv = ConversationFactory(channel_account=twitter_account, identity__external_id="11")
    MessageFactory(conversation=conv, external_id=tweet["id"], text=tweet["text"])
    twitter_api.add_fault("POST", "/2/tweets", delay=4, after_handling=True)
    worker = workers()
    redis_server.restart(sig=signal.SIGKILL, down_for=0.5)  # a first restart: reconnected
    wait_for(lambda: worker.log().count("Connected to") >= 2, 30, what="the worker reconnected")
    broker = client_app(redis_server.url)
    with django_capture_on_commit_callbacks(execute=False):
        msg = reply_create(conversation=conv, agent=agent, text="@alice hi!")
    broker.send_task("outbound.send_message", [msg.pk])
    broker.close()
    wait_for(lambda: twitter_api.posted, 20, what="the post in flight")
    redis_server.restart(sig=signal.SIGKILL, down_for=0.5)  # the second, with a task in flight

    wait_for(lambda: Message.objects.filter(pk=msg.pk, send_status="sent").exists(), 30, what="reply sent")
    time.sleep(3)  # the worker handles the lost connection meanwhile
    assert worker.proc.poll() is None and "Unrecoverable error" not in worker.log(), worker.log()[-3000:]
    assert len(twitter_api.posted) == 1
    # and it still takes new work from the restarted Redis
    later = twitter_api.add_mention("@acme one more thing", author_id="11")
    broker = client_app(redis_server.url)
    broker.send_task("connectors.poll_account", [twitter_account.pk])
    broker.close()
    wait_for(lambda: Message.objects.filter(external_id=later["id"]).exists(), 30, what="a poll after the restart")


def test_task_taken_as_redis_dies_is_run_not_dropped(tmp_path):
    """The worker pops a task (BRPOP) and then records it as unacked; Redis dying
    in between made kombu raise and drop the popped task (a pushed mention lost,
    about one run in four of the test above). cxinbox/broker.py keeps it."""
    from kombu import Connection

    redis = RedisServer(workdir=tmp_path / "redis-pop").start()
    try:
        with Connection(redis.url, transport="cxinbox.broker:Transport") as conn:
            channel = conn.default_channel
            channel.basic_publish(channel.prepare_message("mention 1"), exchange="", routing_key="ingest")
            raw = channel._get("ingest")  # what BRPOP hands the worker: the task has left the queue
            message = channel.Message(raw, channel=channel)
            redis.stop(signal.SIGKILL)
            channel.qos.append(message, message.delivery_tag)  # stock kombu raises ConnectionError here
            assert message.delivery_tag in channel.qos._delivered, "the popped task was dropped"
            assert message.body == b"mention 1"
    finally:
        redis.stop()


def test_task_handed_back_as_redis_is_down_waits_in_the_unacked_set(tmp_path):
    """A task handed back (Reject requeue, cxinbox/celery.py) while Redis is down:
    the reject cannot reach Redis, and the task must still be there once it is back
    (stock kombu raised from the dead channel instead)."""
    from kombu import Connection

    redis = RedisServer(appendonly=True, workdir=tmp_path / "redis-reject").start()
    try:
        with Connection(redis.url, transport="cxinbox.broker:Transport") as conn:
            channel = conn.default_channel
            channel.basic_publish(channel.prepare_message("mention 2"), exchange="", routing_key="ingest")
            message = channel.Message(channel._get("ingest"), channel=channel)
            channel.qos.append(message, message.delivery_tag)
            redis.restart(sig=signal.SIGKILL, down_for=0.1)
            redis.stop(signal.SIGKILL)
            channel.qos.reject(message.delivery_tag, requeue=True)  # no exception: left for the sweep
            redis.start()
        # (closing the first connection may already have put it back on its queue)
        with Connection(redis.url, transport="cxinbox.broker:Transport") as conn:
            client = conn.default_channel.client
            assert client.hexists(conn.default_channel.unacked_key, message.delivery_tag) or client.llen("ingest") == 1
    finally:
        redis.stop()
