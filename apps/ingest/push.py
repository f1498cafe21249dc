"""Push delivery, the ingest half: the task a delivery queued stores its account's pending
deliveries as batches, each marked done in the transaction that stores its mentions
(docs/connectors.md, "Push delivery"); deliveries left pending are queued again by the
sweep, done ones pruned, and one that keeps failing ends failed. The edge's half, which
keeps a delivery before the sender's 2xx, is apps/connectors/push.py."""
from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Func, IntegerField
from django.utils import timezone

from apps.connectors.models import ChannelAccount, PushDelivery
from apps.connectors.providers.base import mention_from_dict
from apps.connectors.push import PUSH_INGEST_TASK, push_ingest_flag, push_ingest_queue
from apps.core.db import bitmap_scans_off, commit_without_flush_wait
from apps.core.kv import kv_delete
from apps.core.task_queue import task_named

from .services import IngestResult, Origin, mention_fit, mentions_ingest

log = logging.getLogger(__name__)


def _push_ingest_next(account_id: int, delivery_id: int) -> None:
    """The task for the deliveries after a full batch, queued now, not after this
    commit: another worker takes the next batch (SKIP LOCKED passes over this
    one's) while this one stores it. After the commit, one busy account kept one
    worker process busy however many there were (docs/performance-history.md item 28).
    Run eagerly (tests), the task would run inside this transaction, which SKIP
    LOCKED does not skip: after the commit then, as before."""
    from cxinbox.celery import app

    if app.conf.task_always_eager:
        transaction.on_commit(lambda: push_ingest_queue(account_id, delivery_id, gather=False), robust=True)
        return
    try:
        push_ingest_queue(account_id, delivery_id, gather=False)  # a full batch: a backlog, no window
    except Exception:  # noqa: BLE001 - the broker unreachable must not fail this batch: the sweep queues the rest
        log.warning("next push ingest task of account %s not queued; the sweep will", account_id, exc_info=True)


def push_delivery_ingest(*, delivery_id: int) -> IngestResult | None:
    """Stores the pending deliveries of this delivery's account and marks them done
    in the same transaction: done means stored. It takes them (SKIP LOCKED) up to
    PUSH_INGEST_BATCH deliveries and PUSH_INGEST_MAX_MENTIONS mentions: one mention per
    delivery arriving at 200/s would otherwise pay an ingest and a routing transaction
    each, and the work of one transaction stays bounded by mentions (a delivery bigger
    than that is split first). A delivery another task holds is skipped: that task
    marks it done, or its rollback leaves it pending for the sweep.
    Every failure counts: if a batch raises (any error, a database one included), it is
    halved and each half tried alone, down to single deliveries, so a poison delivery
    fails alone (an attempt counted on it, failed after PUSH_DELIVERY_MAX_ATTEMPTS) and
    its neighbours are stored now. Raises only when the database stays unreachable
    (the task is retried, the sweep is behind it)."""
    row = (PushDelivery.objects.filter(pk=delivery_id)
           .values_list("account_id", "status", _MentionCount("mentions")).first())
    if row is None:
        return None
    account_id, status, size = row
    try:  # before the take: a delivery committed after this queues its own task
        kv_delete(push_ingest_flag(account_id))
    except Exception:  # noqa: BLE001 - the flag expires by itself
        log.warning("push ingest flag of account %s not cleared (cache unreachable)", account_id)
    limit = max(1, settings.PUSH_INGEST_MAX_MENTIONS)
    if status == PushDelivery.Status.PENDING and (size or 0) > limit:
        _push_delivery_split(delivery_id=delivery_id, size=limit)  # stored before this change, or split lost
    batch = settings.PUSH_INGEST_BATCH
    result = IngestResult()
    taken: list[int] = []

    def take():
        taken[:] = [delivery_id]  # should the take itself raise, the attempt counts on this task's delivery
        deliveries = _push_deliveries_take(delivery_id, account_id, batch=batch, max_mentions=limit)
        taken[:] = [d.pk for d in deliveries]
        return deliveries

    held = _push_deliveries_try(account_id, take, taken, wait=False, result=result)
    if not taken:
        return None  # done, failed, gone, or being ingested by another task
    if held:
        # The deliveries with a mention whose author another ingest held: stored now, in a
        # transaction that holds nothing else while it waits (docs/performance-history.md item 29).
        _push_deliveries_try(account_id, None, held, wait=True, result=result)
    return result


class _MentionCount(Func):
    """How many mentions a delivery holds, read in the database (the JSON array's length)."""

    function = "JSON_ARRAY_LENGTH"
    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, function="JSONB_ARRAY_LENGTH", **extra)


def _push_delivery_split(*, delivery_id: int, size: int) -> None:
    """A pending delivery of more than `size` mentions becomes several of `size`
    (committed on its own, before any ingest): each is then a bounded ingest."""
    with transaction.atomic():
        delivery = (PushDelivery.objects.select_for_update(skip_locked=True)
                    .filter(pk=delivery_id, status=PushDelivery.Status.PENDING).first())
        if delivery is None or len(delivery.mentions) <= size:
            return
        chunks = [delivery.mentions[i:i + size] for i in range(0, len(delivery.mentions), size)]
        parts = PushDelivery.objects.bulk_create([
            PushDelivery(account_id=delivery.account_id, mentions=chunk, attempts=delivery.attempts,
                         request_id=delivery.request_id) for chunk in chunks[1:]])
        # accepted when the whole was (auto_now_add gave them now): their arrival -> routed time and backlog age
        PushDelivery.objects.filter(pk__in=[p.pk for p in parts]).update(created_at=delivery.created_at)
        delivery.mentions = chunks[0]
        delivery.save(update_fields=["mentions", "updated_at"])
    log.info("push delivery %s split into %d deliveries of at most %d mentions", delivery_id, len(chunks), size)


def _push_deliveries_try(account_id: int, take, ids: list[int], *, wait: bool, result: IngestResult) -> list[int]:
    """Stores the deliveries `take()` locks (or, without it, `ids`) in one transaction;
    returns the held ones (wait=False). If that raises, halves and tries each half
    alone; a single delivery that raises gets the attempt counted (push_delivery_fail)."""
    try:
        with transaction.atomic():
            deliveries = take() if take else list(
                PushDelivery.objects.select_for_update(skip_locked=True)
                .filter(pk__in=ids, status=PushDelivery.Status.PENDING).order_by("pk"))
            if not deliveries:
                return []  # else taken meanwhile by another task
            commit_without_flush_wait()  # lost in a crash, the deliveries are pending again: the sweep redoes them
            part, held = _push_deliveries_store(account_id, deliveries, wait=wait)
    except Exception as exc:  # noqa: BLE001 - any error: counted below, never a silent loop
        if not connection.is_usable():  # a dropped connection: a new one for what follows (or raises)
            connection.close()
        ids = list(ids)
        if len(ids) <= 1:
            if not ids:
                raise
            log.warning("push delivery %s could not be ingested", ids[0], exc_info=True)
            push_delivery_fail(delivery_id=ids[0], error=f"{type(exc).__name__}: {exc}")
            return []
        log.warning("batch of %d push deliveries failed (%s: %s); trying each half alone", len(ids),
                    type(exc).__name__, exc)
        half = len(ids) // 2
        return (_push_deliveries_try(account_id, None, ids[:half], wait=wait, result=result)
                + _push_deliveries_try(account_id, None, ids[half:], wait=wait, result=result))
    result.add(part)
    return held


class _Unlock(Exception):
    """Rolls a savepoint back, releasing the row locks taken in it."""


def _push_deliveries_take(delivery_id: int, account_id: int, *, batch: int, max_mentions: int) -> list[PushDelivery]:
    """This delivery and pending neighbours of its account, row-locked (SKIP LOCKED:
    what another task holds is its own), up to `batch` deliveries and `max_mentions`
    mentions in all. A full take queues the next task."""
    own = (PushDelivery.objects.select_for_update(skip_locked=True)
           .filter(pk=delivery_id, status=PushDelivery.Status.PENDING).first())
    deliveries = [own] if own else []
    room = max_mentions - (len(own.mentions) if own else 0)
    full = batch > 1 and room <= 0  # own fills the batch: the neighbours go to the next task
    if batch > 1 and (own is None or own.attempts == 0) and room > 0:
        # Only never-failed neighbours: one that failed before waits for its own task. One bigger
        # than a transaction's share (stored before deliveries were split) waits for its own too.
        neighbours = (PushDelivery.objects.select_for_update(skip_locked=True)
                      .filter(account_id=account_id, status=PushDelivery.Status.PENDING, attempts=0)
                      # the order of push_delivery_pending_order: a walk of the pending rows alone, where
                      # "pk" alone let the planner walk the primary key through every done row first
                      .exclude(pk=delivery_id).order_by("account_id", "pk"))
        wanted = batch - len(deliveries)
        try:
            with transaction.atomic(), bitmap_scans_off():  # a savepoint: rolled back if more are locked than fit
                found = list(neighbours.annotate(n=_MentionCount("mentions"))
                             .filter(n__lte=max_mentions)[:wanted])
                fits, total = [], 0
                for delivery in found:
                    if total + delivery.n > room:
                        break
                    fits.append(delivery)
                    total += delivery.n
                full = len(found) >= wanted or len(fits) < len(found)
                if len(fits) < len(found):
                    raise _Unlock  # the ones that did not fit go back to the others (and the next task)
            deliveries += fits  # all fit (the common case): kept locked as they are
        except _Unlock:
            if fits:  # locked again, only those that fit
                deliveries += list(PushDelivery.objects.select_for_update(skip_locked=True)
                                   .filter(pk__in=[d.pk for d in fits], status=PushDelivery.Status.PENDING)
                                   .order_by("pk"))
    if full:  # more may wait, their tasks coalesced into this one
        _push_ingest_next(account_id, delivery_id)
    return deliveries


def _push_deliveries_store(account_id: int, deliveries: list[PushDelivery], *,
                           wait: bool) -> tuple[IngestResult, list[int]]:
    """Stores the locked deliveries' mentions and marks done those all of whose
    mentions are stored. wait=False: the mentions of authors another ingest holds
    (or of conversations a router holds) are not waited for; their deliveries stay pending (and locked until this
    transaction ends), returned for a second pass."""
    account = ChannelAccount.objects.get(pk=account_id)
    mentions = {d.pk: [mention_from_dict(m) for m in d.mentions] for d in deliveries}
    result = mentions_ingest(account=account, mentions=[m for d in deliveries for m in mentions[d.pk]],
                             route_now=True, defer_held=not wait,
                             origins=[Origin(d.created_at, d.request_id) for d in deliveries for _ in mentions[d.pk]])
    deferred = {m.external_id for m in result.deferred}
    held = {d.pk for d in deliveries
            if any(mention_fit(m).external_id in deferred for m in mentions[d.pk])} if deferred else set()
    result.deferred = []
    now = timezone.now()
    PushDelivery.objects.filter(pk__any=[d.pk for d in deliveries if d.pk not in held]).update(
        status=PushDelivery.Status.DONE, done_at=now, attempts=F("attempts") + 1, last_error="", updated_at=now)
    return result, sorted(held)


def push_delivery_fail(*, delivery_id: int, error: str) -> PushDelivery | None:
    """An ingest attempt raised. Left pending for the sweep to try again, up to
    PUSH_DELIVERY_MAX_ATTEMPTS; then failed, with the error on the delivery and the
    account (the connector-health page), instead of being retried forever."""

    with transaction.atomic():
        delivery = PushDelivery.objects.select_for_update().filter(
            pk=delivery_id, status=PushDelivery.Status.PENDING).first()
        if delivery is None:
            return None
        delivery.attempts += 1
        delivery.last_error = error[:2000]
        if delivery.attempts >= settings.PUSH_DELIVERY_MAX_ATTEMPTS:
            delivery.status = PushDelivery.Status.FAILED
            ChannelAccount.objects.filter(pk=delivery.account_id).update(
                last_push_error=f"Delivery {delivery.pk} failed after {delivery.attempts} attempts: {error}"[:500])
            log.error("push delivery %s failed after %s attempts: %s", delivery.pk, delivery.attempts, error)
        else:
            log.warning("push delivery %s attempt %s failed (retried by the sweep): %s",
                        delivery.pk, delivery.attempts, error)
        delivery.save(update_fields=["attempts", "last_error", "status", "updated_at"])
    return delivery


def push_deliveries_requeue(*, older_than_seconds: float, limit: int = 500) -> int:
    """Re-queues deliveries still pending after older_than_seconds (their task was
    lost with Redis, or is failing and waits its next attempt). Touching updated_at
    spaces the re-queues of one delivery by the same delay."""
    cutoff = timezone.now() - dt.timedelta(seconds=older_than_seconds)
    with transaction.atomic():
        ids = list(PushDelivery.objects.select_for_update(skip_locked=True)
                   .filter(status=PushDelivery.Status.PENDING, updated_at__lt=cutoff)
                   .order_by("updated_at").values_list("pk", flat=True)[:limit])
        if ids:
            PushDelivery.objects.filter(pk__in=ids).update(updated_at=timezone.now())
            transaction.on_commit(lambda: [task_named(PUSH_INGEST_TASK).delay(pk) for pk in ids], robust=True)
    if ids:
        log.warning("re-queued %d push deliveries still pending after %s s", len(ids), older_than_seconds)
    return len(ids)


def push_deliveries_prune(*, older_than_days: int) -> int:
    """Done deliveries are only a record once stored: dropped after older_than_days.
    Failed ones stay until someone looks (the health page counts them)."""
    cutoff = timezone.now() - dt.timedelta(days=older_than_days)
    deleted, _ = PushDelivery.objects.filter(status=PushDelivery.Status.DONE, done_at__lt=cutoff).delete()
    return deleted
