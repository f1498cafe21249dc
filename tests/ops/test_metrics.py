"""GET /metrics (apps/ops): guarded, no session, cheap, and showing an operator what the
pipeline holds: a pending push delivery and its age, a Celery task waiting in its
queue, a failing poll account, a queued and a failed reply, an unrouted message, the
webhook accept latency (scraped over real HTTP, parsed as Prometheus parses it), and the
arrival -> routed latency of mentions routed by the real pipeline."""
import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import subprocess
import sys
import textwrap
import uuid

import pytest
import requests
from django.db import connection
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from apps.connectors.models import PushDelivery
from apps.inbox.models import Message
from apps.inbox.sending import message_send_failed
from apps.routing.models import UnroutedMessage
from tests.conftest import requires_redis
from tests.factories import ChannelAccountFactory, ConversationFactory, MessageFactory, UserFactory

TOKEN = "scrape-token-0123456789abcdef"
CONSUMER_SECRET = "twitter-consumer-secret"


def samples(text: str) -> dict:
    """{(sample name, frozenset(labels)): value} of a scrape."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(scraped: dict, name: str, **labels) -> float | None:
    return scraped.get((name, frozenset((k, str(v)) for k, v in labels.items())))


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOW_IPS = []
    return TOKEN


# --- the guard ------------------------------------------------------------------

def test_metrics_do_not_exist_unless_configured(client, db, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOW_IPS = []
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


def test_token_required_wrong_refused_right_scraped_without_a_session(client, db, token):
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    ok = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert ok.status_code == 200
    assert ok["Content-Type"].startswith("text/plain")
    assert "sessionid" not in ok.cookies and "csrftoken" not in ok.cookies
    assert value(samples(ok.content.decode()), "cxinbox_metrics_source_up", source="database") == 1
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405  # no CSRF token needed to be refused


def test_allow_list_lets_its_addresses_in_and_nobody_else(client, db, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOW_IPS = ["10.0.0.0/8", "127.0.0.1"]
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    settings.METRICS_ALLOW_IPS = ["10.0.0.0/8"]
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    # behind one trusted proxy the client is the proxy's X-Forwarded-For entry, not the proxy
    settings.TRUSTED_PROXY_COUNT = 1
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="10.9.9.9").status_code == 200
    # token and allow-list both set: outside the list, the token
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="203.0.113.9",
                      HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


# --- cheap ------------------------------------------------------------------------

def _busy_account(n: int):
    account = ChannelAccountFactory(consecutive_errors=n, last_success_at=timezone.now() - dt.timedelta(minutes=n))
    PushDelivery.objects.create(account=account, mentions=[])
    PushDelivery.objects.create(account=account, mentions=[], status=PushDelivery.Status.FAILED)
    MessageFactory(conversation=ConversationFactory(channel_account=account))
    return account


def test_a_scrape_costs_six_queries_however_many_accounts(client, db, token, django_assert_num_queries):
    _busy_account(1)
    with django_assert_num_queries(6):
        assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    for n in range(2, 8):
        _busy_account(n)
    with django_assert_num_queries(6):
        scraped = samples(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode())
    assert len([k for k in scraped if k[0] == "cxinbox_account_consecutive_errors"]) == 7


def test_the_queries_use_their_indexes(db):
    """What each scrape query reads, with sequential scans priced out: the rows come from
    an index (the tables are tiny here; on a big one the planner has the same indexes)."""
    from django.test.utils import CaptureQueriesContext

    from apps.ops import selectors

    with CaptureQueriesContext(connection) as captured:
        selectors.accounts_watch()
        selectors.replies_watch()
        selectors.unrouted_watch()
        selectors.reports_uncounted_age()
    plans = {}
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for query in captured.captured_queries:
            cursor.execute("EXPLAIN " + query["sql"])
            plans[query["sql"]] = "\n".join(r[0] for r in cursor.fetchall())
    [push] = [p for sql, p in plans.items() if "connectors_pushdelivery" in sql]
    # the planner may take either index of the table on tiny rows; never a scan of all deliveries
    assert "Seq Scan" not in push and "Index" in push
    [replies] = [p for sql, p in plans.items() if "send_status" in sql]
    assert "msg_send_pending" in replies
    [failed] = [p for sql, p in plans.items() if "reply_failed" in sql]
    assert "Seq Scan" not in failed
    [unrouted] = [p for sql, p in plans.items() if "routing_unroutedmessage" in sql]
    # the markers are a handful of rows (scanning them is fine); the message table is only probed by id
    assert "Seq Scan on inbox_message" not in unrouted and "inbox_message_pkey" in unrouted
    [uncounted] = [p for sql, p in plans.items() if "reports_rolluplock" in sql]
    # up the message table's key from the watermark, each message probed by the event's unique key
    assert "Seq Scan on inbox_message" not in uncounted and "Seq Scan on reports_metricevent" not in uncounted


# --- what an operator sees --------------------------------------------------------

def _tw_sig(body: bytes) -> str:
    return "sha256=" + base64.b64encode(hmac.new(CONSUMER_SECRET.encode(), body, hashlib.sha256).digest()).decode()


def _tweet_delivery(tweet_id: str) -> bytes:
    tweet = {"created_at": "Mon Nov 23 08:00:00 +0000 2026", "id_str": tweet_id, "text": "@acme my router is dead",
             "user": {"id_str": "42", "screen_name": "rita", "name": "Rita", "followers_count": 812,
                      "profile_image_url_https": "https://pbs.twimg.com/p/42.jpg", "verified": False},
             "in_reply_to_status_id_str": None, "entities": {"user_mentions": [{"id_str": "783214"}]}}
    return json.dumps({"for_user_id": "783214", "tweet_create_events": [tweet]}).encode()


@requires_redis
def test_scrape_shows_the_backlog_an_operator_must_see(transactional_db, live_server, token):
    """No worker runs: what arrives waits, and the scrape says where and for how long."""
    import redis
    from django.conf import settings
    from django.core.cache import cache

    from cxinbox.celery import app

    cache.clear()  # the hook's replay keys
    scrape = f"{live_server.url}/metrics"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    before = samples(requests.get(scrape, headers=auth, timeout=10).text)
    outbound_before = value(before, "cxinbox_celery_queue_length", queue="outbound")
    hooks_before = value(before, "cxinbox_webhook_accept_seconds_count", provider="twitter", status="2xx") or 0

    # a push delivery over HTTP: stored pending (no worker to ingest it), accepted 2xx
    pushed = ChannelAccountFactory(external_user_id="783214", credentials={
        "bearer_token": "b", "consumer_key": "ck", "consumer_secret": CONSUMER_SECRET,
        "access_token": "at", "access_token_secret": "ats"})
    body = _tweet_delivery(str(1600000000000000000 + uuid.uuid4().int % 10**12))
    accepted = requests.post(f"{live_server.url}/hooks/twitter/{pushed.pk}/", data=body, timeout=10,
                             headers={"Content-Type": "application/json",
                                      "x-twitter-webhooks-signature": _tw_sig(body)})
    assert accepted.status_code < 300, accepted.text
    assert PushDelivery.objects.filter(account=pushed, status="pending").count() == 1
    PushDelivery.objects.filter(account=pushed).update(created_at=timezone.now() - dt.timedelta(seconds=90))
    requests.post(f"{live_server.url}/hooks/nosuch/1/", data=b"{}", timeout=10)  # a scan: label "other"

    # a poll account failing for 10 minutes; a customer message waiting for routing 150 s
    failing = ChannelAccountFactory(consecutive_errors=6, last_error="TransientError: 503",
                                    last_success_at=timezone.now() - dt.timedelta(minutes=10))
    waiting = MessageFactory(conversation=ConversationFactory(channel_account=failing))
    Message.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - dt.timedelta(seconds=150))
    # an agent's reply queued 30 s ago (its task lost), another that failed
    agent = UserFactory(role="agent")
    conversation = ConversationFactory(channel_account=failing)
    queued = MessageFactory(conversation=conversation, direction="out", author_user=agent, external_id=None,
                            send_status="queued", text="On it!")
    Message.objects.filter(pk=queued.pk).update(created_at=timezone.now() - dt.timedelta(seconds=30))
    refused = MessageFactory(conversation=conversation, direction="out", author_user=agent, external_id=None,
                             send_status="sending", text="Sorry!")
    message_send_failed(message_id=refused.pk, reason="AuthError: 401")
    # a Celery task sent to the real broker, no worker to take it
    probe = app.send_task("ops.metrics_probe", queue="outbound")
    try:
        scraped = samples(requests.get(scrape, headers=auth, timeout=10).text)
    finally:
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        for raw in broker.lrange("outbound", 0, -1):
            if probe.id.encode() in raw:
                broker.lrem("outbound", 1, raw)
        broker.close()

    assert value(scraped, "cxinbox_metrics_source_up", source="database") == 1
    assert value(scraped, "cxinbox_metrics_source_up", source="redis") == 1
    assert value(scraped, "cxinbox_celery_queue_length", queue="outbound") == outbound_before + 1
    for queue in ("ingest", "routing", "outbound", "reports", "default"):
        assert value(scraped, "cxinbox_celery_queue_length", queue=queue) is not None

    p = {"account": pushed.pk, "provider": "twitter", "handle": pushed.handle}
    assert value(scraped, "cxinbox_push_deliveries_pending", **p) == 1
    assert 90 <= value(scraped, "cxinbox_push_deliveries_pending_oldest_age_seconds", **p) < 120
    assert value(scraped, "cxinbox_push_deliveries_failed", **p) == 0
    assert value(scraped, "cxinbox_webhook_accept_seconds_count", provider="twitter", status="2xx") == hooks_before + 1
    assert value(scraped, "cxinbox_webhook_accept_seconds_count", provider="other", status="4xx") >= 1
    assert value(scraped, "cxinbox_http_responses_total", status="2xx") >= 2

    f = {"account": failing.pk, "provider": "twitter", "handle": failing.handle}
    assert value(scraped, "cxinbox_account_consecutive_errors", **f) == 6
    assert value(scraped, "cxinbox_account_falling_behind", **f) == 1
    assert 600 <= value(scraped, "cxinbox_account_poll_lag_seconds", **f) < 700

    assert value(scraped, "cxinbox_replies", status="queued") == 1
    assert value(scraped, "cxinbox_replies", status="sending") == 0
    assert 30 <= value(scraped, "cxinbox_replies_oldest_age_seconds", status="queued") < 60
    assert value(scraped, "cxinbox_replies_failed_last_hour") == 1

    assert value(scraped, "cxinbox_messages_unrouted") == UnroutedMessage.objects.count() == 1
    assert 150 <= value(scraped, "cxinbox_messages_unrouted_oldest_age_seconds") < 180
    # not routed, so not counted by the reports either: they are that far behind
    assert 150 <= value(scraped, "cxinbox_reports_uncounted_oldest_age_seconds") < 180


@requires_redis
@pytest.mark.django_db(transaction=True)
def test_routed_latency_is_counted_from_arrival_in_its_buckets(client, token):
    """Mentions go through the real pipeline (push deliveries accepted 45 s and 7 s ago,
    taken by the ingest service and routed in place; a polled batch fetched just now),
    and the scrape's histogram has each in the bucket of its accept/fetch -> routed time,
    not of its post time on the network (a day ago) nor of when ingest stored it."""
    import redis
    from django.conf import settings

    from apps.connectors.providers.base import InboundMention, mention_to_dict
    from apps.ingest.push import push_delivery_ingest
    from apps.ingest.services import Origin, mentions_ingest
    from apps.insights.services import text_score
    from apps.routing import routed_latency

    redis.Redis.from_url(settings.REDIS_URL).delete(routed_latency.redis_key())
    text_score("warm the language models up before anything is timed")
    account = ChannelAccountFactory(provider="webhook", credentials={})
    posted = timezone.now() - dt.timedelta(days=1)

    def mention(n: int) -> InboundMention:
        return InboundMention(external_id=f"lat-{n}", text="where is my parcel", created_at=posted,
                              author_external_id=f"author-{n}", author_handle=f"author{n}")

    for age, numbers in ((45, [1, 2]), (7, [3])):
        delivery = PushDelivery.objects.create(account=account, mentions=[mention_to_dict(mention(n)) for n in numbers])
        PushDelivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - dt.timedelta(seconds=age))
    push_delivery_ingest(delivery_id=delivery.pk)  # takes all three, routes them after its commit
    fetched = Origin(timezone.now(), "poll-req")
    mentions_ingest(account=account, mentions=[mention(4), mention(5)], route_now=True, origins=[fetched] * 2)
    assert not UnroutedMessage.objects.exists()

    scraped = samples(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode())
    bucket = {le: value(scraped, "cxinbox_mention_routed_seconds_bucket", le=le)
              for le in ("2.5", "5.0", "10.0", "30.0", "60.0", "+Inf")}
    assert bucket == {"2.5": 2, "5.0": 2, "10.0": 3, "30.0": 3, "60.0": 5, "+Inf": 5}, bucket
    assert value(scraped, "cxinbox_mention_routed_seconds_count") == 5
    assert 45 * 2 + 7 <= value(scraped, "cxinbox_mention_routed_seconds_sum") < 45 * 2 + 7 + 5 * 2.5


def test_paused_accounts_are_not_watched(client, db, token):
    paused = ChannelAccountFactory(is_active=False, consecutive_errors=9)
    scraped = samples(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode())
    assert not [k for k in scraped if ("account", str(paused.pk)) in k[1]]


# --- several web processes --------------------------------------------------------

def test_multiprocess_mode_sums_every_worker_process(tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR set (as gunicorn's workers would share it), requests
    seen by two processes are summed by a scrape in a third."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "cxinbox.settings.test"}
    observe = textwrap.dedent("""
        import django; django.setup()
        from apps.ops.metrics import request_observe
        request_observe(path="/hooks/twitter/1/", status=200, seconds=0.02)
        request_observe(path="/inbox/", status=502, seconds=0.5)
    """)
    scrape = textwrap.dedent("""
        import django; django.setup()
        from apps.ops.metrics import exposition
        print(exposition()[0].decode())
    """)
    for _ in range(2):
        subprocess.run([sys.executable, "-c", observe], env=env, check=True, timeout=60)
    out = subprocess.run([sys.executable, "-c", scrape], env=env, check=True, timeout=60, capture_output=True,
                         text=True).stdout
    scraped = samples(out)
    assert value(scraped, "cxinbox_webhook_accept_seconds_count", provider="twitter", status="2xx") == 2
    assert value(scraped, "cxinbox_http_responses_total", status="5xx") == 2


def test_the_asgi_stack_is_timed_too(db):
    """Production serves ASGI: requests through the ASGI handler are counted the same way
    (the middleware below it is sync-only, so Django runs the whole stack, this one
    included, behind one thread hop)."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    from apps.ops.metrics import WEBHOOK_SECONDS

    def hooks_4xx() -> float:
        return next((s.value for m in WEBHOOK_SECONDS.collect() for s in m.samples
                     if s.name.endswith("_count") and s.labels == {"provider": "other", "status": "4xx"}), 0)

    before = hooks_4xx()
    response = async_to_sync(AsyncClient().post)("/hooks/nosuch/1/", data=b"{}", content_type="application/json")
    assert 400 <= response.status_code < 500
    assert hooks_4xx() == before + 1
