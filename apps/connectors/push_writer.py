"""Group commit for push deliveries on the production web tier (cxinbox/asgi_hooks.py).

Each webhook request used to store its delivery itself: a pool checkout (with its health
check), one INSERT committing on its own, then the ingest flag in Redis, all on the
request's thread. On 2 cores the web tier then waited on those round trips, not on the
CPU: ~0.75 cores busy at its ceiling of ~450-520 deliveries/s (issue 19). Here one thread
per process stores them: it takes every delivery waiting, writes them in one multi-row
INSERT and one commit, queues ingest once per account, and only then wakes each request,
so "stored before the 2xx" still holds. Nothing waits to fill a batch: a delivery arriving
while the thread is idle is written at once; the ones that arrive during a commit form the
next batch.

Only the ASGI hooks handler starts it. The test client, the development server and a
caller inside a transaction store as before (services.push_delivery_accept)."""
from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import orjson
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connection

from apps.core.db import rows_insert

from .models import PushDelivery

log = logging.getLogger(__name__)

# Rows in one INSERT: a bound on the statement (500 one-tweet deliveries are ~1 MB of JSON).
BATCH_MAX = 500
# A request waits this long for its batch's commit, then answers 503 (the sender retries it).
STORE_TIMEOUT_SECONDS = 10.0


# The thread keeps its database connection while deliveries keep coming and gives it back
# to the pool after this long idle: taken again for every batch, the pool's checkout and its
# health check were a tenth of the web tier's CPU at 800 deliveries/s (issue 19).
IDLE_RELEASE_SECONDS = 1.0


class PushStoreTimeout(Exception):
    """The writer did not commit the delivery in time (PostgreSQL stalled): the sender gets a
    503 and sends it again. Should the commit still happen, ingest drops the second copy."""


@dataclass
class _Item:
    account: object  # ChannelAccount
    delivery: object  # PushDelivery, unsaved
    done: Future = field(default_factory=Future)


class PushDeliveryWriter:
    def __init__(self, on_stored):
        self._on_stored = on_stored  # (account=, delivery_id=) once per account and batch, after the commit
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="push-writer", daemon=True)
        self._thread.start()

    def store(self, *, account, delivery) -> int:
        """The delivery's id once committed; raises what storing it raised."""
        item = _Item(account, delivery)
        self._queue.put(item)
        try:
            return item.done.result(timeout=STORE_TIMEOUT_SECONDS)
        except FutureTimeout:
            raise PushStoreTimeout(f"not stored within {STORE_TIMEOUT_SECONDS:g} s") from None

    def stop(self) -> None:
        """After the deliveries already handed over are stored; the thread's connection closed."""
        self._queue.put(None)
        self._thread.join(STORE_TIMEOUT_SECONDS)

    def _run(self) -> None:
        while True:
            try:
                items = [self._queue.get(timeout=IDLE_RELEASE_SECONDS)]
            except queue.Empty:
                close_old_connections()  # idle: the connection back to the pool
                items = [self._queue.get()]
            while len(items) < BATCH_MAX:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = None in items
            items = [item for item in items if item is not None]
            if items:
                self._batch(items)
            if stopping:
                connection.close()
                return

    def _batch(self, items: list[_Item]) -> None:
        try:
            self._write(items)
        except BaseException as exc:  # noqa: BLE001 - each request answers with it; the thread goes on
            for item in items:
                if not item.done.done():
                    item.done.set_exception(exc)

    def _write(self, items: list[_Item], *, retried: bool = False) -> None:
        try:
            # one statement in autocommit: atomic by itself, and committed without BEGIN and COMMIT
            # round trips (two a batch; at 500 deliveries/s a batch holds two or three)
            _deliveries_insert([item.delivery for item in items])
        except DatabaseError as exc:
            connection.close()
            if isinstance(exc, (OperationalError, InterfaceError)) and not retried:
                # the kept connection died (PostgreSQL restarted while it sat idle): once more on a new one
                log.warning("push writer: %s; storing the batch again on a new connection", exc)
                return self._write(items, retried=True)
            if len(items) == 1:
                raise
            # one row PostgreSQL refuses must not fail the others: each alone, so only it answers 5xx
            log.warning("a batch of %d push deliveries failed; storing them one by one", len(items), exc_info=True)
            for item in items:
                try:
                    self._write([item], retried=True)
                except BaseException as exc:  # noqa: BLE001
                    item.done.set_exception(exc)
            return
        latest = {}
        for item in items:
            item.done.set_result(item.delivery.pk)
            latest[item.account.pk] = item
        for item in latest.values():  # once per account and batch: the ingest flag and the health fields
            try:
                self._on_stored(account=item.account, delivery_id=item.delivery.pk)
            except Exception:  # noqa: BLE001 - stored and answered; the sweep queues what was not
                log.warning("after storing push deliveries of account %s", item.account.pk, exc_info=True)


def _deliveries_insert(deliveries: list) -> None:
    """One INSERT of the batch as a JSON recordset (apps.core.db.rows_insert): Django's
    bulk_create quoted every value of its UNNEST arrays in Python, a quarter of the web
    tier's CPU at 800 deliveries/s (issue 19). A payload orjson cannot write (an integer
    beyond 64 bits deep in a signed tweet) goes through bulk_create, whose json can."""
    try:
        rows_insert(deliveries)
    except orjson.JSONEncodeError:
        PushDelivery.objects.bulk_create(deliveries)


_writer: PushDeliveryWriter | None = None
_writer_lock = threading.Lock()
_enabled = False


def push_writer_enable() -> None:
    """This process stores push deliveries through one writer thread (the hooks handler)."""
    global _enabled
    _enabled = True


def push_writer_disable() -> None:
    """Back to storing in the request's thread (the tests of the hooks handler)."""
    global _enabled, _writer
    with _writer_lock:
        _enabled = False
        if _writer is not None:
            _writer.stop()
            _writer = None


def push_writer_get(*, on_stored) -> PushDeliveryWriter | None:
    """The process's writer, started on first use (after gunicorn forked the worker), or
    None where it is not enabled."""
    global _writer
    if not _enabled:
        return None
    if _writer is None:
        with _writer_lock:
            if _writer is None:
                _writer = PushDeliveryWriter(on_stored)
    return _writer
