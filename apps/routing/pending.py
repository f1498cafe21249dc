"""What waits for routing: a marker per customer message stored and not routed yet
(`UnroutedMessage`, added in the message's own transaction, taken under the
conversations' locks so a message is routed once), and the Redis list of ingest
batches that the next routing transaction takes with its own (it only groups work:
each task still carries its batch). Plus the scores of messages stored unscored,
computed before the routing transaction takes its locks."""
from __future__ import annotations

import datetime as dt
import json
import logging

from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.inbox.models import Message
from apps.insights.services import text_score

from .models import UnroutedMessage

log = logging.getLogger(__name__)
PENDING_TAKE = 20  # ingest batches one routing task takes from the pending list at most,
PENDING_CONVERSATIONS = 300  # and it stops taking once its batch has this many conversations
PENDING_EXPIRY_SECONDS = 24 * 3600
_redis = None


def pending_list():
    """(Redis client, key) of the pending list, or (None, None) without Redis (embedded mode)."""
    global _redis
    if not getattr(settings, "REDIS_URL", ""):
        return None, None
    if _redis is None:
        import redis

        _redis = redis.Redis.from_url(settings.REDIS_URL)
    return _redis, f"routing:pending:{connection.settings_dict['NAME']}"


def pending_take(pairs) -> list[tuple[int, list[int]]]:
    """`pairs` plus batches waiting on the pending list (up to PENDING_TAKE of
    them, or PENDING_CONVERSATIONS conversations: one transaction stays short),
    merged per conversation in arrival order."""
    merged: dict[int, list[int]] = {}

    def add(batch):
        for conversation_id, message_ids in batch:
            merged.setdefault(int(conversation_id), []).extend(int(m) for m in message_ids)

    add(pairs)
    client, key = pending_list()
    taken = 0
    while client is not None and taken < PENDING_TAKE and len(merged) < PENDING_CONVERSATIONS:
        try:
            entries = client.lpop(key, 4) or []
        except Exception:  # noqa: BLE001 - the list only groups work
            log.warning("routing: could not read the pending list", exc_info=True)
            break
        for entry in entries:
            add(json.loads(entry))
        taken += len(entries)
        if len(entries) < 4:
            break
    return [(conversation_id, sorted(set(message_ids))) for conversation_id, message_ids in merged.items()]


def scores_ahead(pairs) -> dict[int, tuple] | None:
    """Language and sentiment of the batch's messages that are not routed and were
    stored unscored (before ingest scored them), computed before the routing
    transaction takes its locks (a customer's message text does not change).
    Message id -> insights.text_score; one query. None: none of the batch's
    messages is waiting for routing (another task took this batch)."""
    ids = [m for _, message_ids in pairs for m in message_ids]
    if not ids:
        return {}
    rows = UnroutedMessage.objects.filter(pk__any=ids).values_list("pk", "message__sentiment_label")
    unscored = [pk for pk, label in rows if not label]
    if not rows:
        return None
    if not unscored:
        return {}
    texts = Message.objects.filter(pk__in=unscored).values_list("pk", "text")
    return {pk: text_score(text) for pk, text in texts}


def messages_unrouted_add(message_ids, *, arrived_at: list[dt.datetime] | None = None,
                          request_ids: list[str] | None = None) -> None:
    """Marks customer messages just stored as waiting for routing (ingest, in the
    messages' transaction): one INSERT. `arrived_at` / `request_ids`, parallel to the
    ids: when each message reached us and the request that brought it (default: now,
    none)."""
    message_ids = [int(m) for m in message_ids]
    if not message_ids:
        return
    arrived_at = arrived_at or [timezone.now()] * len(message_ids)
    request_ids = request_ids or [""] * len(message_ids)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {UnroutedMessage._meta.db_table} (message_id, arrived_at, request_id) "
                           "SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[])",
                           [message_ids, arrived_at, request_ids])
    else:
        UnroutedMessage.objects.bulk_create([UnroutedMessage(message_id=m, arrived_at=at, request_id=r)
                                             for m, at, r in zip(message_ids, arrived_at, request_ids)])


def unrouted_take(message_ids) -> dict[int, tuple[dt.datetime, str]]:
    """Deletes the routing markers of `message_ids` and returns, for the ids that had
    one (the messages this transaction routes), when each arrived and the request that
    brought it. Under the conversations' locks, so of two routers given the same
    message only the first one routes it."""
    message_ids = sorted({int(m) for m in message_ids})
    if not message_ids:
        return {}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {UnroutedMessage._meta.db_table} WHERE message_id = ANY(%s) "
                           "RETURNING message_id, arrived_at, request_id", [message_ids])
            return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
    taken = {m: (at, r) for m, at, r in UnroutedMessage.objects.select_for_update().filter(pk__in=message_ids)
             .values_list("pk", "arrived_at", "request_id")}
    UnroutedMessage.objects.filter(pk__in=taken).delete()
    return taken
