"""Push ingest is bounded by mentions, counts every failure, and isolates a poison
delivery (issue 18): a 15,000-author delivery no longer runs PostgreSQL out of lock
memory, and one delivery that fails (even with a database error) neither stalls
the account nor stops its neighbours."""
import json

import pytest
from django.db import connection

from apps.connectors.models import PushDelivery
from apps.connectors.providers.webhook import signed_headers
from apps.inbox.models import Message
from apps.ingest.tasks import push_deliveries_sweep_task

from .hook_accounts import webhook  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="lock memory and triggers: PostgreSQL")


@pytest.fixture(autouse=True)
def _fresh_replay_cache():
    from django.core.cache import cache

    cache.clear()


def _deliver(client, account, messages):
    body = json.dumps({"messages": messages}, separators=(",", ":")).encode()
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed_headers("sign-456", body).items()}
    return client.post(f"/hooks/webhook/{account.pk}/", data=body, content_type="application/json",
                       HTTP_AUTHORIZATION="Bearer in-token-123", **headers)


def _msg(n: int, text: str | None = None) -> dict:
    return {"id": f"m{n}", "text": text or f"where is order {n}", "created_at": "2026-11-23T08:00:00Z",
            "author": {"id": f"a{n}", "handle": f"h{n}"}}


@pytest.mark.django_db(transaction=True)  # real commits: each transaction's locks are its own
def test_a_15000_author_delivery_is_stored_whole_in_bounded_transactions(client, webhook, eager_celery, settings):
    settings.HOOKS_MAX_BODY_BYTES = 2 * 1024 * 1024
    settings.PUSH_INGEST_MAX_MENTIONS = 500
    messages = [_msg(n) for n in range(15_000)]
    resp = _deliver(client, webhook, messages)  # accepted, then ingested (eager) chunk by chunk
    assert resp.status_code == 200 and resp.json() == {"accepted": 15_000}
    # kept as deliveries of at most 500 mentions: no ingest transaction takes 15,000 author locks
    assert PushDelivery.objects.filter(account=webhook).count() == 30
    assert set(PushDelivery.objects.values_list("status", "attempts")) == {("done", 1)}
    assert Message.objects.filter(channel_account=webhook).count() == 15_000


@pytest.mark.django_db(transaction=True)
def test_a_big_delivery_stored_before_the_split_is_split_at_ingest(webhook, settings):
    """A pending delivery kept whole by an older release is cut before it is ingested."""
    from apps.ingest.push import push_delivery_ingest

    settings.PUSH_INGEST_MAX_MENTIONS = 100
    big = PushDelivery.objects.create(account=webhook, mentions=[{
        "external_id": f"old-{n}", "text": f"order {n}", "created_at": "2026-11-23T08:00:00+00:00",
        "author_external_id": f"old-author-{n}", "author_handle": f"old{n}"} for n in range(250)], request_id="old-req")
    accepted = big.created_at
    for _ in range(3):  # what the sweep does: each pending one gets a task
        for pk in PushDelivery.objects.filter(status="pending").values_list("pk", flat=True):
            push_delivery_ingest(delivery_id=pk)
    big.refresh_from_db()
    assert len(big.mentions) == 100
    assert sorted(len(m) for m in PushDelivery.objects.values_list("mentions", flat=True)) == [50, 100, 100]
    assert Message.objects.filter(channel_account=webhook).count() == 250
    assert set(PushDelivery.objects.values_list("status", flat=True)) == {"done"}
    # the parts keep when and through which request the whole arrived (the routed histogram, the logs)
    assert set(PushDelivery.objects.values_list("created_at", "request_id")) == {(accepted, "old-req")}


@pytest.fixture
def poison_trigger(db):
    """The database refuses any message with POISON in its text, as PostgreSQL did when it
    ran out of lock memory: SQLSTATE 53200 (an OperationalError). Rolled back with the test."""
    with connection.cursor() as cursor:
        cursor.execute("""
            CREATE FUNCTION cx_test_poison() RETURNS trigger AS $$ BEGIN
              RAISE EXCEPTION 'out of shared memory' USING ERRCODE = '53200',
                HINT = 'You might need to increase max_locks_per_transaction.';
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER cx_test_poison BEFORE INSERT ON inbox_message FOR EACH ROW
              WHEN (NEW.text LIKE '%%POISON%%') EXECUTE FUNCTION cx_test_poison();
        """)


def test_a_poison_delivery_fails_alone_counted_and_its_neighbours_are_stored(
        client, webhook, eager_celery, settings, poison_trigger, admin_user, django_capture_on_commit_callbacks):
    settings.PUSH_REDELIVER_SECONDS = 0
    settings.PUSH_DELIVERY_MAX_ATTEMPTS = 3
    with django_capture_on_commit_callbacks(execute=False) as queued:
        for n, text in enumerate(["order 1 late", "order 2 late", "POISON order", "order 4 late", "order 5 late"]):
            assert _deliver(client, webhook, [_msg(n, text)]).status_code == 200
    poison = PushDelivery.objects.get(mentions__0__external_id="m2")
    with django_capture_on_commit_callbacks(execute=True):
        queued[0]()  # one task takes all five; the batch fails; halves are tried until the poison is alone
    assert sorted(Message.objects.values_list("external_id", flat=True)) == ["m0", "m1", "m3", "m4"]
    poison.refresh_from_db()
    assert poison.status == "pending" and poison.attempts == 1  # an OperationalError counts too
    assert "out of shared memory" in poison.last_error
    assert set(PushDelivery.objects.exclude(pk=poison.pk).values_list("status", "attempts")) == {("done", 1)}

    # the next deliveries of the account are not held up behind it
    with django_capture_on_commit_callbacks(execute=True):
        assert _deliver(client, webhook, [_msg(9, "order 9 late")]).status_code == 200
    assert Message.objects.filter(external_id="m9").exists()

    for _ in range(4):  # the sweep tries it on its own until it is given up
        with django_capture_on_commit_callbacks(execute=True):
            push_deliveries_sweep_task()
    poison.refresh_from_db()
    assert poison.status == "failed" and poison.attempts == 3
    client.force_login(admin_user)
    html = client.get("/connectors/health/").content.decode()
    assert "1 delivery failed" in html and "out of shared memory" in html


@pytest.mark.django_db(transaction=True)  # the poll's own transactions, not the test's
def test_a_big_poll_is_stored_in_bounded_transactions_with_replies_threaded(
        twitter_api, twitter_account, eager_celery, settings):
    from unittest import mock

    from apps.ingest import services
    from apps.ingest.tasks import poll_due_accounts_task

    settings.PUSH_INGEST_MAX_MENTIONS = 2
    for n in range(5):
        twitter_api.add_user(str(20 + n), f"user{n}")
    first = twitter_api.add_mention("@acme my order is late", author_id="20")
    for n in range(1, 5):
        twitter_api.add_mention(f"@acme problem {n}", author_id=str(20 + n))
    reply = twitter_api.add_mention("@acme any news?", author_id="20", in_reply_to=first["id"])
    with mock.patch.object(services, "_after_ingest", wraps=services._after_ingest) as committed:
        poll_due_accounts_task()
    assert Message.objects.filter(channel_account=twitter_account).count() == 6
    assert committed.call_count == 3  # three transactions of two mentions, each routed after its commit
    parent = Message.objects.get(external_id=first["id"])
    assert Message.objects.get(external_id=reply["id"]).conversation_id == parent.conversation_id


@pytest.mark.django_db(transaction=True)
def test_deliveries_are_batched_by_mentions_and_the_ones_that_do_not_fit_wait_for_the_next_task(
        client, webhook, eager_celery, settings, django_capture_on_commit_callbacks):
    from unittest import mock

    from apps.connectors import push as edge
    from apps.ingest import push

    settings.PUSH_INGEST_MAX_MENTIONS = 5
    with mock.patch.object(edge, "push_ingest_queue"):  # accepted while no task runs yet
        for n in range(4):  # 4 deliveries of 2 mentions: at most two fit a transaction
            assert _deliver(client, webhook, [_msg(10 * n), _msg(10 * n + 1)]).status_code == 200
    first = PushDelivery.objects.order_by("pk").first()
    with mock.patch.object(push, "mentions_ingest", wraps=push.mentions_ingest) as ingest:
        push.push_delivery_ingest(delivery_id=first.pk)  # takes two, queues the next task (eager: runs it)
    assert [len(call.kwargs["mentions"]) for call in ingest.call_args_list] == [4, 4]
    assert Message.objects.filter(channel_account=webhook).count() == 8
    assert set(PushDelivery.objects.values_list("status", flat=True)) == {"done"}


@pytest.mark.django_db(transaction=True)
def test_the_take_walks_the_pending_index_past_rows_done_since_the_last_vacuum(webhook, settings):
    """Every delivery that was pending leaves a dead entry in the pending index until a vacuum.
    A bitmap scan re-read all of their rows on every take (139 ms a take after 5 minutes at 200/s
    with autovacuum behind, and growing); the take is planned as an index scan, which marks them dead
    and passes over them after. Measured here by the pages the take's query reads, a second time."""
    from django.db import transaction
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from apps.connectors.providers.base import InboundMention, mention_to_dict
    from apps.ingest import push

    def mention(n: int) -> dict:
        return mention_to_dict(InboundMention(external_id=f"t{n}", text=f"where is order {n}", created_at=timezone.now(),
                                              author_external_id=f"a{n}", author_handle=f"h{n}"))

    PushDelivery.objects.bulk_create([PushDelivery(account=webhook, mentions=[]) for _ in range(3000)])
    PushDelivery.objects.update(status=PushDelivery.Status.DONE)  # 3,000 dead entries in the pending index
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE connectors_pushdelivery")
    first, second = (PushDelivery.objects.create(account=webhook, mentions=[mention(n)]) for n in (1, 2))
    with CaptureQueriesContext(connection) as queries:
        push.push_delivery_ingest(delivery_id=first.pk)
    assert set(PushDelivery.objects.filter(pk__in=[first.pk, second.pk]).values_list("status", flat=True)) == {"done"}
    sqls = [q["sql"] for q in queries.captured_queries]
    at = next(i for i, sql in enumerate(sqls) if "SKIP LOCKED" in sql
              and '"connectors_pushdelivery"."account_id" =' in sql and "ORDER BY" in sql)
    take = sqls[at]
    # the take itself is planned with bitmap scans off, and they are back on for the ingest after it
    assert "set_config('enable_bitmapscan', 'off', true)" in sqls[at - 1]
    assert "set_config('enable_bitmapscan'" in sqls[at + 1] and "'on'" in sqls[at + 1]
    with transaction.atomic(), push.bitmap_scans_off(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + take)
        plan = cursor.fetchone()[0][0]["Plan"]
    text = json.dumps(plan)
    assert "Bitmap" not in text and "push_delivery_pending_order" in text
    assert plan["Shared Hit Blocks"] + plan["Shared Read Blocks"] < 200  # not the 3,000 dead rows' pages
