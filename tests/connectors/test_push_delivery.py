"""Push deliveries are kept in PostgreSQL before the sender gets its 2xx: a lost
ingest task is sent again by the sweep, a malformed delivery stores nothing, and a
delivery that fails every time ends failed, visible on the connector-health API."""
import json

import pytest
from django.conf import settings
from django.db import connection

from apps.connectors.models import PushDelivery
from apps.connectors.providers.webhook import signed_headers
from apps.inbox.models import Message
from apps.ingest.tasks import push_deliveries_sweep_task

from .hook_accounts import webhook  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db
MESSAGE = {"messages": [{"id": "chat-1", "text": "Is the blue kettle back in stock?", "thread_id": "session-9",
                         "created_at": "2026-11-23T08:00:00Z",
                         "author": {"id": "visitor-77", "handle": "ana", "name": "Ana Lima"}}]}


@pytest.fixture(autouse=True)
def _fresh_replay_cache():
    from django.core.cache import cache

    cache.clear()


def _deliver(client, account, payload):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed_headers("sign-456", body).items()}
    return client.post(f"/hooks/webhook/{account.pk}/", data=body, content_type="application/json",
                       HTTP_AUTHORIZATION="Bearer in-token-123", **headers)


def test_accepted_delivery_is_in_postgres_before_the_answer_and_done_once_stored(
        client, webhook, eager_celery, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        resp = _deliver(client, webhook, MESSAGE)
    assert resp.status_code == 200 and resp.json() == {"accepted": 1}
    delivery = PushDelivery.objects.get(account=webhook)
    assert delivery.status == "pending" and delivery.mentions[0]["external_id"] == "chat-1"
    assert not Message.objects.exists()  # only queued so far
    with django_capture_on_commit_callbacks(execute=True):
        for callback in queued:
            callback()
    delivery.refresh_from_db()
    assert delivery.status == "done" and delivery.done_at is not None
    assert Message.objects.get().text == "Is the blue kettle back in stock?"


def test_sweep_sends_a_lost_delivery_again_and_never_doubles_it(client, webhook, eager_celery, settings,
                                                               django_capture_on_commit_callbacks):
    settings.PUSH_REDELIVER_SECONDS = 0
    with django_capture_on_commit_callbacks(execute=False):  # the ingest task is lost (Redis crashed)
        assert _deliver(client, webhook, MESSAGE).status_code == 200
    assert not Message.objects.exists()
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            push_deliveries_sweep_task()
    assert list(Message.objects.values_list("external_id", flat=True)) == ["chat-1"]
    assert PushDelivery.objects.get().status == "done"


@pytest.mark.parametrize("payload,detail", [
    (b'{"messages": [{"id": ', "The body is not JSON."),
    ({"messages": [{"id": "x", "author": {"id": "1"}}]}, "messages[0] lacks text."),
])
def test_malformed_delivery_is_refused_and_nothing_is_stored(client, webhook, eager_celery, payload, detail,
                                                             django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        resp = _deliver(client, webhook, payload)
    assert resp.status_code == 400 and resp.json() == {"detail": detail}
    assert not PushDelivery.objects.exists() and not Message.objects.exists()


def test_poison_delivery_ends_failed_with_its_error_on_the_health_api(webhook, eager_celery, settings, api_client,
                                                                     admin_user, django_capture_on_commit_callbacks):
    settings.PUSH_REDELIVER_SECONDS = 0
    settings.PUSH_DELIVERY_MAX_ATTEMPTS = 3
    # stored by an older release in a shape ingest no longer reads: it raises on every attempt
    poison = PushDelivery.objects.create(account=webhook, mentions=[
        {"external_id": "bad-1", "text": "hi", "created_at": "yesterday-ish", "author_external_id": "u1"}])
    for _ in range(5):  # more sweeps than attempts: the last ones find nothing to send
        with django_capture_on_commit_callbacks(execute=True):
            push_deliveries_sweep_task()
    poison.refresh_from_db()
    assert poison.status == "failed" and poison.attempts == 3
    assert "ValueError" in poison.last_error and "yesterday-ish" in poison.last_error
    assert not Message.objects.exists()

    api_client.force_authenticate(admin_user)
    row = next(r for r in api_client.get("/api/v1/channel-accounts/health/").json() if r["id"] == webhook.pk)
    assert row["state"] == "failing" and row["push_deliveries_failed"] == 1
    assert f"Delivery {poison.pk} failed after 3 attempts" in row["last_push_error"]


def test_health_page_shows_failed_deliveries(webhook, client, admin_user):
    PushDelivery.objects.create(account=webhook, mentions=[], status="failed", attempts=5,
                                last_error="ValueError: boom")
    webhook.last_push_error = "Delivery 1 failed after 5 attempts: ValueError: boom"
    webhook.save()
    client.force_login(admin_user)
    html = client.get("/connectors/health/").content.decode()
    assert "1 delivery failed" in html and "ValueError: boom" in html


def test_sweep_drops_done_deliveries_after_the_keep_period_but_never_failed_ones(webhook, settings):
    import datetime as dt

    from django.utils import timezone

    settings.PUSH_DELIVERY_KEEP_DAYS = 7
    old = timezone.now() - dt.timedelta(days=8)
    PushDelivery.objects.create(account=webhook, status="done", done_at=old)
    recent = PushDelivery.objects.create(account=webhook, status="done", done_at=timezone.now())
    failed = PushDelivery.objects.create(account=webhook, status="failed", last_error="boom")
    push_deliveries_sweep_task()
    assert set(PushDelivery.objects.values_list("pk", flat=True)) == {recent.pk, failed.pk}


def _message(n: int) -> dict:
    return {"messages": [{"id": f"chat-{n}", "text": f"Order {n} has not arrived", "thread_id": f"session-{n}",
                          "created_at": f"2026-11-23T08:00:{n:02d}Z",
                          "author": {"id": f"visitor-{n}", "handle": f"guest{n}", "name": f"Guest {n}"}}]}


def test_one_task_stores_the_accounts_waiting_deliveries_in_one_batch(
        client, webhook, eager_celery, django_capture_on_commit_callbacks, django_assert_max_num_queries):
    """Deliveries of one mention each arrive faster than tasks run: the first task
    takes them all (one ingest, one routing batch); the others find them done."""
    with django_capture_on_commit_callbacks(execute=False) as queued:
        for n in range(6):
            assert _deliver(client, webhook, _message(n)).status_code == 200
    assert len(queued) == 6 and not Message.objects.exists()
    with django_capture_on_commit_callbacks(execute=True) as routing:
        queued[0]()
    assert sorted(Message.objects.values_list("external_id", flat=True)) == [f"chat-{n}" for n in range(6)]
    assert set(PushDelivery.objects.values_list("status", "attempts")) == {("done", 1)}
    for callback in queued[1:]:
        # each remaining task: its account, its row, the account's pending (in a savepoint: one that
        # does not fit the batch's mentions is let go; planned as an index scan, the setting set and put
        # back: apps/core/db.py bitmap_scans_off)
        with django_assert_max_num_queries(9):
            callback()
    assert Message.objects.count() == 6 and len(routing) >= 1


def test_a_poison_neighbour_does_not_block_the_batch_or_count_against_it(
        client, webhook, eager_celery, settings, django_capture_on_commit_callbacks):
    settings.PUSH_REDELIVER_SECONDS = 0
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert _deliver(client, webhook, _message(1)).status_code == 200
    poison = PushDelivery.objects.create(account=webhook, mentions=[
        {"external_id": "bad-1", "text": "hi", "created_at": "yesterday-ish", "author_external_id": "u1"}])
    with django_capture_on_commit_callbacks(execute=True):
        queued[0]()  # the batch (good + poison) raises; each is then tried alone
    good = PushDelivery.objects.exclude(pk=poison.pk).get()
    poison.refresh_from_db()
    assert good.status == "done" and list(Message.objects.values_list("external_id", flat=True)) == ["chat-1"]
    assert good.attempts == 1  # not charged for the batch's failure
    assert poison.status == "pending" and poison.attempts == 1 and poison.last_error  # its own failure, counted
    with django_capture_on_commit_callbacks(execute=True):
        push_deliveries_sweep_task()  # its own task: fails again on its own account
    poison.refresh_from_db()
    assert poison.attempts == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL (.ci/run)")
def test_a_delivery_held_by_another_task_is_skipped_not_waited_for(webhook):
    """Two ingest tasks at once: the second takes what the first does not hold
    and does not wait behind it; the held delivery is stored by its holder."""
    import threading
    import time

    from django.db import transaction

    from apps.ingest.push import push_delivery_ingest

    def delivery(n):
        return PushDelivery.objects.create(account=webhook, mentions=[{
            "external_id": f"chat-{n}", "text": f"Order {n} has not arrived", "created_at": "2026-11-23T08:00:00+00:00",
            "author_external_id": f"visitor-{n}", "author_handle": f"guest{n}"}])

    held, free = delivery(1), delivery(2)
    locked, release = threading.Event(), threading.Event()

    def holder():
        with transaction.atomic():
            PushDelivery.objects.select_for_update().get(pk=held.pk)
            locked.set()
            release.wait(10)
        connection.close()

    th = threading.Thread(target=holder)
    th.start()
    assert locked.wait(5)
    t = time.monotonic()
    push_delivery_ingest(delivery_id=free.pk)
    assert time.monotonic() - t < 3  # it did not wait for the held row
    assert list(Message.objects.values_list("external_id", flat=True)) == ["chat-2"]
    assert push_delivery_ingest(delivery_id=held.pk) is None  # still held: skipped
    release.set()
    th.join(5)
    push_delivery_ingest(delivery_id=held.pk)
    assert sorted(Message.objects.values_list("external_id", flat=True)) == ["chat-1", "chat-2"]
    assert set(PushDelivery.objects.values_list("status", flat=True)) == {"done"}


def test_deliveries_arriving_while_an_ingest_task_waits_queue_no_more_tasks(client, webhook, eager_celery,
                                                                            django_capture_on_commit_callbacks):
    """One task waiting per account: it takes every delivery that came meanwhile;
    once it has started, the next delivery queues a task again."""
    from unittest import mock

    from apps.ingest.tasks import push_delivery_ingest_task

    with mock.patch.object(push_delivery_ingest_task, "apply_async") as queued:
        with django_capture_on_commit_callbacks(execute=True):
            for n in range(5):
                assert _deliver(client, webhook, _message(n)).status_code == 200
    assert queued.call_count == 1 and not Message.objects.exists()
    assert queued.call_args.kwargs["countdown"] == settings.PUSH_INGEST_GATHER_SECONDS  # due after the window
    with django_capture_on_commit_callbacks(execute=True):
        push_delivery_ingest_task(*queued.call_args.args[0])
    assert Message.objects.count() == 5
    assert set(PushDelivery.objects.values_list("status", flat=True)) == {"done"}
    with mock.patch.object(push_delivery_ingest_task, "apply_async") as queued_again:
        with django_capture_on_commit_callbacks(execute=True):
            assert _deliver(client, webhook, _message(9)).status_code == 200
    assert queued_again.call_count == 1


def test_a_full_batch_queues_the_next_one(client, webhook, eager_celery, settings,
                                          django_capture_on_commit_callbacks):
    settings.PUSH_INGEST_BATCH = 2
    with django_capture_on_commit_callbacks(execute=False) as queued:
        for n in range(5):
            assert _deliver(client, webhook, _message(n)).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        queued[0]()  # 2 taken, then the task queues itself for the rest (eager here: at once)
    assert Message.objects.count() == 5


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL (.ci/run)")
def test_a_busy_account_is_ingested_by_two_workers_at_once(webhook, settings):
    """A task that takes a full batch queues the next one before it stores its
    own: a second worker stores the next deliveries while the first still holds
    its batch, instead of one worker taking them all in turn."""
    import threading
    from unittest import mock

    from apps.ingest import push
    from apps.ingest.push import push_delivery_ingest
    from apps.ingest.tasks import push_delivery_ingest_task

    settings.PUSH_INGEST_BATCH = 2
    deliveries = [PushDelivery.objects.create(account=webhook, mentions=[{
        "external_id": f"chat-{n}", "text": f"Order {n} has not arrived", "created_at": f"2026-11-23T08:00:0{n}+00:00",
        "author_external_id": f"visitor-{n}", "author_handle": f"guest{n}"}]) for n in range(4)]
    storing, release = threading.Event(), threading.Event()
    real_ingest = push.mentions_ingest

    def first_worker_ingest(**kwargs):  # the first batch is stored, then its transaction stays open
        result = real_ingest(**kwargs)
        if threading.current_thread().name == "first":
            storing.set()
            release.wait(10)
        return result

    queued = []
    with mock.patch.object(push_delivery_ingest_task, "delay", side_effect=queued.append), \
            mock.patch.object(push, "mentions_ingest", side_effect=first_worker_ingest):
        first = threading.Thread(target=lambda: (push_delivery_ingest(delivery_id=deliveries[0].pk),
                                                 connection.close()), name="first")
        first.start()
        try:
            assert storing.wait(5)
            assert queued, "the next task was not queued while the first batch was being stored"
            push_delivery_ingest(delivery_id=queued[0])  # the second worker, meanwhile
            # the second batch is committed while the first still holds its own
            assert sorted(Message.objects.values_list("external_id", flat=True)) == ["chat-2", "chat-3"]
            assert list(PushDelivery.objects.filter(status="pending").order_by("pk")
                        .values_list("pk", flat=True)) == [deliveries[0].pk, deliveries[1].pk]
        finally:
            release.set()
            first.join(10)
    assert sorted(Message.objects.values_list("external_id", flat=True)) == [f"chat-{n}" for n in range(4)]
    assert set(PushDelivery.objects.values_list("status", flat=True)) == {"done"}


def test_a_broker_down_when_the_next_task_is_queued_loses_nothing(webhook, settings):
    """Queueing the next batch's task fails (Redis unreachable): this batch is still
    stored and done; the rest stay pending for the sweep."""
    from unittest import mock

    from kombu.exceptions import OperationalError as BrokerDown

    from apps.ingest.push import push_delivery_ingest
    from apps.ingest.tasks import push_delivery_ingest_task

    settings.PUSH_INGEST_BATCH = 2
    deliveries = [PushDelivery.objects.create(account=webhook, mentions=[{
        "external_id": f"chat-{n}", "text": f"Order {n} has not arrived", "created_at": f"2026-11-23T08:00:0{n}+00:00",
        "author_external_id": f"visitor-{n}", "author_handle": f"guest{n}"}]) for n in range(3)]
    with mock.patch.object(push_delivery_ingest_task, "delay", side_effect=BrokerDown("Redis unreachable")) as queued:
        push_delivery_ingest(delivery_id=deliveries[0].pk)
    assert queued.called
    assert sorted(Message.objects.values_list("external_id", flat=True)) == ["chat-0", "chat-1"]
    assert list(PushDelivery.objects.order_by("pk").values_list("status", flat=True)) == ["done", "done", "pending"]
