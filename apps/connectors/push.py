"""Push delivery, the edge's half: a verified delivery is kept in PostgreSQL before the
sender's 2xx (the web tier's group commit: push_writer.py) and one ingest task is queued per
account, by its name: the ingest app above (apps/ingest/push.py) stores an account's pending
deliveries as batches (docs/connectors.md, "Push delivery")."""
from __future__ import annotations

import functools
import logging

from django.conf import settings
from django.db import close_old_connections, connection, transaction

from apps.core.kv import kv_add
from apps.core.task_queue import task_named

from .health import push_health_touch
from .models import ChannelAccount, PushDelivery
from .providers.base import InboundMention, mention_clean, mention_to_dict
from .push_writer import push_writer_get

log = logging.getLogger(__name__)


def push_delivery_accept(*, account: ChannelAccount, mentions: list[InboundMention]) -> int:
    """A verified push delivery is kept in PostgreSQL before the sender gets its
    2xx, then queued for ingest once that commits. If Redis loses the task, the
    row stays pending and push_deliveries_requeue sends it again."""
    # cleaned before the JSON is stored: a NUL or lone surrogate failed the insert (a 500, the
    # good messages of the delivery lost); an absurd time or javascript: URL is not kept
    payload = [mention_to_dict(mention_clean(m)) for m in mentions]
    # Kept as deliveries of at most PUSH_INGEST_MAX_MENTIONS: ingest bounds its transactions
    # by mentions (a 15,000-author delivery in one ran PostgreSQL out of lock memory).
    size = max(1, settings.PUSH_INGEST_MAX_MENTIONS)
    writer = push_writer_get(on_stored=push_delivery_stored)
    if payload and len(payload) <= size and writer is not None and not connection.in_atomic_block:
        # the web tier's group commit: stored (committed) with the deliveries of other requests,
        # ingest queued and health written once per account and batch (push_writer.py). A connection
        # this thread took (to look the account up) goes back to the pool first: held while waiting,
        # a burst of those took every connection and the writer waited for one (a 10-s stall).
        close_old_connections()
        writer.store(account=account, delivery=PushDelivery(account=account, mentions=payload))
        return len(payload)
    if payload:
        if len(payload) <= size:
            # One statement committing by itself (autocommit): one round trip to PostgreSQL where
            # BEGIN, INSERT and COMMIT took three. Still committed before the 2xx.
            delivery = _push_delivery_insert(PushDelivery(account=account, mentions=payload))
        else:
            with transaction.atomic():
                delivery = PushDelivery.objects.bulk_create([PushDelivery(account=account, mentions=payload[i:i + size])
                                                             for i in range(0, len(payload), size)])[0]
        # Now (autocommit), or at the commit of a caller's transaction. robust: Redis down must not
        # turn the stored delivery into a 5xx (the network would send it again); the sweep queues it.
        transaction.on_commit(lambda: push_ingest_queue(account.pk, delivery.pk), robust=True)
    push_health_touch(account=account)
    return len(payload)


def push_delivery_stored(*, account: ChannelAccount, delivery_id: int) -> None:
    """After a commit of push deliveries (push_writer): ingest queued, the health fields written."""
    push_ingest_queue(account.pk, delivery_id)
    push_health_touch(account=account)


def _push_delivery_insert(delivery: PushDelivery) -> PushDelivery:
    """delivery.save(), less the ORM's SQL compile for a statement that never changes (a tenth
    of the web tier's Python time per delivery): every concrete field, as save() sends them."""
    fields = [f for f in PushDelivery._meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(delivery, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(_push_delivery_insert_sql(tuple(f.column for f in fields)), values)
        delivery.pk = cursor.fetchone()[0]
    delivery._state.adding = False
    return delivery


@functools.lru_cache(maxsize=4)
def _push_delivery_insert_sql(columns: tuple[str, ...]) -> str:
    qn = connection.ops.quote_name
    return (f"INSERT INTO {qn(PushDelivery._meta.db_table)} ({', '.join(qn(c) for c in columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))}) RETURNING {qn(PushDelivery._meta.pk.column)}")


PUSH_INGEST_TASK = "ingest.push_delivery"  # apps/ingest/tasks.py


def push_ingest_flag(account_id: int) -> str:
    return f"push-ingest-queued:{account_id}"


def push_ingest_queue(account_id: int, delivery_id: int, *, gather: bool = True) -> None:
    """One ingest task waiting per account, not one per delivery: at 200 one-mention
    deliveries a second the tasks that found their delivery already taken cost more
    than the ingest. The flag is cleared by the task before it takes the pending
    deliveries, so one committed after that queues a task of its own; it expires
    after PUSH_INGEST_COALESCE_SECONDS should the task be lost (and the sweep is
    behind that).

    `gather`: the task is due PUSH_INGEST_GATHER_SECONDS from now, and what arrives
    meanwhile queues nothing and is taken by it. At 200 one-mention deliveries a second a
    task started at once took 2-5 of them and paid its fixed cost (transactions, routing,
    the live pushes) for each few: 3.7 ms of worker CPU a mention against 1.1 in a batch
    of 500. A countdown, not a wait inside the task: a task sleeping out its window held
    one of the worker's 2 processes, and 4 busy accounts queued behind each other's
    sleeps (the live inbox's socket p99 went 0.7 -> 1.3 s, docs/performance.md). A task
    that waited behind a backlog is past its due time when taken: it waits for nothing."""
    # By name: the task is the ingest app's, above this one (docs/architecture.md, "Layers").
    push_delivery_ingest_task = task_named(PUSH_INGEST_TASK)
    try:
        first = kv_add(push_ingest_flag(account_id), str(delivery_id), settings.PUSH_INGEST_COALESCE_SECONDS)
    except Exception:  # noqa: BLE001 - the cache is Redis: queueing below fails too, the sweep sends it
        first = True
    if first:
        countdown = settings.PUSH_INGEST_GATHER_SECONDS if gather else 0
        if countdown > 0:
            push_delivery_ingest_task.apply_async((delivery_id,), countdown=countdown)
        else:
            push_delivery_ingest_task.delay(delivery_id)
