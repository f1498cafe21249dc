"""A delivery that queues its account's ingest task makes it due PUSH_INGEST_GATHER_SECONDS
later (a Celery countdown): what arrives meanwhile is stored in the same batch (a trickle
of one-tweet deliveries otherwise cost a task each few mentions and kept 2 cores 97% busy
at 200/s). The window holds no worker process: other work runs meanwhile (a task sleeping
out its window held one of the 2, and accounts queued behind each other's sleeps)."""
import json
import time

import pytest

from apps.connectors.models import PushDelivery
from apps.connectors.providers.webhook import signed_headers
from apps.inbox.models import Message
from apps.ingest.push import push_delivery_ingest
from apps.ingest.tasks import push_delivery_ingest_task
from tests.conftest import requires_redis
from tests.factories import ChannelAccountFactory
from tests.integration.conftest import celery_worker_on_redis  # noqa: F401 - fixture

from .hook_accounts import webhook  # noqa: F401 (fixture)


@pytest.fixture(autouse=True)
def _fresh_replay_cache():
    from django.core.cache import cache

    cache.clear()


def _account(name: str):
    return ChannelAccountFactory(provider="webhook", handle=name, credentials={},
                                 hook_secrets={"inbound_token": "in-token-123", "signing_secret": "sign-456"})


def _deliver(client, account, message_id: str) -> PushDelivery:
    body = json.dumps({"messages": [{"id": message_id, "text": f"Where is my order? ({message_id})",
                                     "author": {"id": f"buyer-{message_id}", "handle": "buyer"}}]}).encode()
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed_headers("sign-456", body).items()}
    resp = client.post(f"/hooks/webhook/{account.pk}/", data=body, content_type="application/json",
                       HTTP_AUTHORIZATION="Bearer in-token-123", **headers)
    assert resp.status_code == 200
    return PushDelivery.objects.filter(account=account).latest("pk")


def _stored(*external_ids) -> bool:
    return Message.objects.filter(external_id__in=external_ids).count() == len(external_ids)


def _wait_for(check, seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds} s")


@requires_redis
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_deliveries_arriving_within_the_window_are_stored_in_one_batch(celery_worker_on_redis, client,  # noqa: F811
                                                                       settings):
    settings.PUSH_INGEST_GATHER_SECONDS = 1.0
    account = _account("gather")
    started = time.monotonic()
    first = _deliver(client, account, "m-1")
    second = _deliver(client, account, "m-2")
    third = _deliver(client, account, "m-3")
    time.sleep(0.4)
    assert not Message.objects.exists()  # the account's task is not due yet
    _wait_for(lambda: _stored("m-1", "m-2", "m-3"), 20)
    took = time.monotonic() - started
    done = {d.pk: d for d in PushDelivery.objects.all()}
    assert {d.status for d in done.values()} == {"done"}
    # one transaction stored all three: one done time
    assert done[first.pk].done_at == done[second.pk].done_at == done[third.pk].done_at
    assert 0.9 <= took < 10, took


@requires_redis
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_accounts_waiting_out_their_window_hold_no_worker_process(celery_worker_on_redis, client,  # noqa: F811
                                                                  settings):
    settings.PUSH_INGEST_GATHER_SECONDS = 4.0
    a, b, c = _account("a"), _account("b"), _account("c")
    _deliver(client, a, "a-1")
    _deliver(client, b, "b-1")  # two accounts' tasks wait out their window: the test worker has 2 threads
    late = _deliver(client, c, "c-1")
    push_delivery_ingest_task.delay(late.pk)  # as the sweep queues a delivery: due now
    assert _wait_for(lambda: _stored("c-1"), 10) < 2.5
    assert not _stored("a-1") and not _stored("b-1")
    _wait_for(lambda: _stored("a-1", "b-1"), 20)


@pytest.mark.django_db(transaction=True)
def test_the_task_itself_never_waits(client, webhook, settings):  # noqa: F811
    settings.PUSH_INGEST_GATHER_SECONDS = 5.0
    delivery = _deliver(client, webhook, "m-9")
    started = time.monotonic()
    push_delivery_ingest(delivery_id=delivery.pk)  # taken behind a backlog, or by the sweep
    assert time.monotonic() - started < 2.0
    assert Message.objects.get().external_id == "m-9"
