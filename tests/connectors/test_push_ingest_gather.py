"""A push ingest task that starts right after its delivery arrived waits until that
delivery is PUSH_INGEST_GATHER_SECONDS old and stores what arrived meanwhile in the same
batch (a trickle of one-tweet deliveries otherwise cost a task each few mentions and kept
2 cores 97% busy at 200/s); a task that starts late, behind a backlog, waits for nothing."""
import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.connectors.models import PushDelivery
from apps.connectors.providers.webhook import signed_headers
from apps.connectors.push import push_delivery_ingest
from apps.inbox.models import Message

from .hook_accounts import webhook  # noqa: F401 (fixtures)


@pytest.fixture(autouse=True)
def _fresh_replay_cache():
    from django.core.cache import cache

    cache.clear()


def _deliver(client, account, message_id: str) -> PushDelivery:
    body = json.dumps({"messages": [{"id": message_id, "text": f"Where is my order? ({message_id})",
                                     "author": {"id": f"buyer-{message_id}", "handle": "buyer"}}]}).encode()
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed_headers("sign-456", body).items()}
    resp = client.post(f"/hooks/webhook/{account.pk}/", data=body, content_type="application/json",
                       HTTP_AUTHORIZATION="Bearer in-token-123", **headers)
    assert resp.status_code == 200
    return PushDelivery.objects.filter(account=account).latest("pk")


def _ingest_in_a_worker_thread(delivery_id: int) -> threading.Thread:
    def run():
        try:
            push_delivery_ingest(delivery_id=delivery_id)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_deliveries_arriving_while_the_task_gathers_are_stored_in_its_batch(client, webhook, settings):
    settings.PUSH_INGEST_GATHER_SECONDS = 0.8
    first = _deliver(client, webhook, "m-1")
    started = time.monotonic()
    worker = _ingest_in_a_worker_thread(first.pk)
    time.sleep(0.2)
    assert not Message.objects.exists()  # the task is gathering, nothing stored yet
    second = _deliver(client, webhook, "m-2")
    third = _deliver(client, webhook, "m-3")
    worker.join(10)
    took = time.monotonic() - started

    assert sorted(Message.objects.values_list("external_id", flat=True)) == ["m-1", "m-2", "m-3"]
    done = {d.pk: d for d in PushDelivery.objects.all()}
    assert {d.status for d in done.values()} == {"done"}
    # one transaction stored all three: one done time
    assert done[first.pk].done_at == done[second.pk].done_at == done[third.pk].done_at
    assert 0.5 <= took < 5, took  # it waited out the window (from the first delivery's arrival), no longer


@pytest.mark.django_db(transaction=True)
def test_a_task_that_starts_late_waits_for_nothing(client, webhook, settings):
    settings.PUSH_INGEST_GATHER_SECONDS = 5.0
    delivery = _deliver(client, webhook, "m-9")
    # the task waited in a queue behind a backlog: its delivery is older than the window
    PushDelivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - timedelta(seconds=6))
    started = time.monotonic()
    push_delivery_ingest(delivery_id=delivery.pk)
    assert time.monotonic() - started < 2.0
    assert Message.objects.get().external_id == "m-9"


@pytest.mark.django_db(transaction=True)
def test_a_clock_ahead_never_holds_a_task_longer_than_the_window(client, webhook, settings):
    settings.PUSH_INGEST_GATHER_SECONDS = 0.5
    delivery = _deliver(client, webhook, "m-7")
    # the web server's clock ran a minute ahead of the worker's when it stamped the delivery
    PushDelivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() + timedelta(minutes=1))
    started = time.monotonic()
    push_delivery_ingest(delivery_id=delivery.pk)
    assert time.monotonic() - started < 1.5
    assert Message.objects.get().external_id == "m-7"
