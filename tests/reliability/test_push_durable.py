"""A push delivery accepted (2xx) survives Redis losing its ingest task: the
delivery is in PostgreSQL, the sweep queues it again, and the mention is stored
exactly once however often the sweep runs."""
import json
import re
import signal
import time

import redis as redis_py

from apps.connectors.models import PushDelivery
from apps.connectors.providers.webhook import signed_headers
from apps.inbox.models import Message
from tests.factories import ChannelAccountFactory

from .conftest import needs_real_services
from .procs import client_app, project_app_on, wait_for

pytestmark = needs_real_services


def test_accepted_push_delivery_survives_a_redis_crash_before_any_worker(redis_server, workers, postgres, client):
    from django.core.cache import cache

    cache.clear()
    account = ChannelAccountFactory(provider="webhook", handle="shop-chat", external_user_id="", credentials={},
                                    hook_secrets={"inbound_token": "tok", "signing_secret": "sec"})
    body = json.dumps({"messages": [{"id": "chat-1", "text": "Where is my parcel?", "author": {"id": "v7"}}]}).encode()
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed_headers("sec", body).items()}
    with project_app_on(redis_server.url):
        resp = client.post(f"/hooks/webhook/{account.pk}/", data=body, content_type="application/json",
                           HTTP_AUTHORIZATION="Bearer tok", **headers)
    assert resp.status_code == 200 and resp.json() == {"accepted": 1}
    queue = redis_py.Redis.from_url(redis_server.url)
    assert queue.llen("ingest") == 1, "the ingest task is in Redis, not consumed yet"

    redis_server.restart(sig=signal.SIGKILL, down_for=0.5)  # no AOF: Redis comes back empty
    assert queue.llen("ingest") == 0
    worker = workers(env={"PUSH_REDELIVER_SECONDS": "1"})
    time.sleep(2)
    assert not Message.objects.exists(), "the task was lost with Redis"
    assert PushDelivery.objects.get().status == "pending"

    broker = client_app(redis_server.url)
    try:
        broker.send_task("connectors.push_deliveries_sweep")  # what beat sends every PUSH_SWEEP_SECONDS
        wait_for(lambda: Message.objects.filter(external_id="chat-1").exists(), 30, what="the mention stored")
        wait_for(lambda: PushDelivery.objects.filter(status="done").exists(), 10, what="the delivery done")
        time.sleep(1.2)  # older than PUSH_REDELIVER_SECONDS again: a pending delivery would be re-sent
        for _ in range(2):
            broker.send_task("connectors.push_deliveries_sweep")
        time.sleep(3)
    finally:
        broker.close()
    assert list(Message.objects.filter(direction="in").values_list("external_id", flat=True)) == ["chat-1"]
    delivery = PushDelivery.objects.get()
    assert delivery.status == "done" and delivery.attempts == 1
    runs = re.findall(r"Task ingest\.push_delivery\[\S+\] received", worker.log())
    assert len(runs) == 1, "one re-delivery, then none: the delivery is done"
