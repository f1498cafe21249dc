"""Pushes inbox changes to connected browsers through the channel layer.

Services call `inbox_push` inside `transaction.on_commit`, so nobody is told
about a row that was rolled back. A push that fails is logged, never raised:
the page also refreshes itself."""
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)
INBOX_GROUP = "inbox"


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def user_group(user_id: int) -> str:
    """One user's own channel: toasts for assignments and @mentions."""
    return f"user.{user_id}"


def user_push(user_id: int, kind: str, **data) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(user_group(user_id), {"type": "inbox.event", "kind": kind, **data})
    except Exception:  # noqa: BLE001 - best-effort, like inbox_push
        log.warning("realtime push to user %s failed", user_id, exc_info=True)


def inbox_push(kind: str, conversation_id: int, **data) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    event = {"type": "inbox.event", "kind": kind, "conversation_id": conversation_id, **data}
    try:
        async_to_sync(layer.group_send)(INBOX_GROUP, event)
        async_to_sync(layer.group_send)(conversation_group(conversation_id), event)
    except Exception:  # noqa: BLE001 - realtime is best-effort; the page polls as a fallback
        log.warning("realtime push failed for %s on #%s", kind, conversation_id, exc_info=True)


def inbox_push_many(kind: str, conversation_ids: list[int], **data) -> None:
    """inbox_push for a batch, the same events, sent from one event loop and one
    Redis connection (a loop and a connection per push cost ~10 ms each)."""
    layer = get_channel_layer()
    if layer is None or not conversation_ids:
        return

    async def send_all():
        for conversation_id in conversation_ids:
            event = {"type": "inbox.event", "kind": kind, "conversation_id": conversation_id, **data}
            await layer.group_send(INBOX_GROUP, event)
            await layer.group_send(conversation_group(conversation_id), event)

    try:
        async_to_sync(send_all)()
    except Exception:  # noqa: BLE001 - realtime is best-effort; the page polls as a fallback
        log.warning("realtime push failed for %s on %d conversations", kind, len(conversation_ids), exc_info=True)
