"""Pushes inbox changes to connected browsers through the channel layer.

Services call `inbox_push` inside `transaction.on_commit`, so nobody is told
about a row that was rolled back. A push that fails is logged, never raised:
the page also refreshes itself.

Events go only to those who may see the conversation (docs/roles.md, Ownership):
its queue's team group (`inbox.team.<id>`: the team's agents and leading
supervisors), or the unrouted group (supervisors) when it has no queue, its
assignee's own group unless the assignee already hears one of those (a socket
joins its groups at connect, consumers._groups_for), and the "inbox" group
(admins). A browser in two of them gets each event once (the consumer drops
repeats by `eid`). A thread page picks
the events of its own conversation by `conversation_id`. (A per-conversation
group had no member ever, and sending to it doubled the Redis work of every push.)"""
import asyncio
import logging
import os
import threading
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from apps.accounts.models import Role, Team, User

from .models import Conversation, Queue

log = logging.getLogger(__name__)
INBOX_GROUP = "inbox"  # every conversation: admins
UNROUTED_GROUP = "inbox.unrouted"  # conversations with no queue: supervisors (and admins, through "inbox")
PUSH_TIMEOUT_SECONDS = 5

_loop = None
_loop_pid = None
_loop_lock = threading.Lock()


def _push_loop() -> asyncio.AbstractEventLoop:
    """One event loop per process, in a daemon thread (new after a fork)."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():
            _loop, _loop_pid = asyncio.new_event_loop(), os.getpid()
            threading.Thread(target=_loop.run_forever, name="realtime-push", daemon=True).start()
        return _loop


def _send(layer, sends: list[tuple[str, dict]]) -> None:
    """group_send each (group, event). With channels-redis they run on the
    process's long-lived loop, so its Redis connections are reused: async_to_sync
    made a new loop and a new connection per push (~10 ms each, most of a
    routing task's time, docs/performance-history.md). Other layers (in-memory, tests)
    keep async_to_sync: they are bound to the caller's loop."""

    async def send_all():
        # each group gets one message; the groups of one push go out together, not one
        # Redis round trip after another (a batch reaches its team, admins and assignees)
        await asyncio.gather(*(layer.group_send(group, event) for group, event in sends))

    if type(layer).__module__.startswith("channels_redis"):
        asyncio.run_coroutine_threadsafe(send_all(), _push_loop()).result(PUSH_TIMEOUT_SECONDS)
    else:
        async_to_sync(send_all)()


def user_group(user_id: int) -> str:
    """One user's own channel: toasts for assignments and @mentions."""
    return f"user.{user_id}"


def team_group(team_id: int) -> str:
    """A team's conversations: its agents and the supervisors who lead it."""
    return f"inbox.team.{team_id}"


def conversation_groups(conversation_ids) -> dict[int, list[str]]:
    """The groups told about each conversation (one query for them all). Plain SQL: the
    ORM compiling this query was ~1.5 ms of a Celery worker's CPU per push, two pushes
    per ingested batch (docs/performance-history.md)."""
    from django.db import connection


    ids = sorted({int(pk) for pk in conversation_ids})
    if not ids:
        return {}
    sql = (f"SELECT c.id, q.team_id, c.assignee_id, u.is_superuser, u.role, "
           f"EXISTS (SELECT 1 FROM {Team.members.through._meta.db_table} m "
           f"WHERE m.team_id = q.team_id AND m.user_id = c.assignee_id), "
           f"EXISTS (SELECT 1 FROM {Team.leads.through._meta.db_table} l "
           f"WHERE l.team_id = q.team_id AND l.user_id = c.assignee_id) "
           f"FROM {Conversation._meta.db_table} c "
           f"LEFT JOIN {Queue._meta.db_table} q ON q.id = c.queue_id "
           f"LEFT JOIN {User._meta.db_table} u ON u.id = c.assignee_id "
           f"WHERE c.id IN ({', '.join(['%s'] * len(ids))})")
    with connection.cursor() as cursor:
        cursor.execute(sql, ids)
        rows = cursor.fetchall()
    groups = {}
    for pk, team_id, assignee_id, superuser, role, member, lead in rows:
        names = [INBOX_GROUP, team_group(team_id) if team_id is not None else UNROUTED_GROUP]
        # Does the assignee hear the conversation through the team, unrouted or inbox group
        # already (the rule of consumers._groups_for)? Then their own group is not told too:
        # at 100 mentions/s that was ~100 single-socket group messages a second, each
        # dropped by the consumer as a repeat.
        if role == Role.SUPERVISOR:
            heard = team_id is None or bool(lead)
        else:
            heard = bool(member)
        if assignee_id is not None and not (superuser or role == Role.ADMIN or heard):
            names.append(user_group(assignee_id))
        groups[pk] = names
    return groups


def _coalesced(events: list[dict]) -> list[dict]:
    """Without a `conversation_updated` beside another change of the same conversation
    in the same push: the page refetches on either, so one of them is enough."""
    changed = {e["conversation_id"] for e in events if e["kind"] not in ("conversation_updated", "presence")}
    return [e for e in events if not (e["kind"] == "conversation_updated" and e["conversation_id"] in changed)]


def _fan_out(events: list[dict]) -> list[tuple[str, dict]]:
    """(group, message) pairs: each group gets the events it may see, batched as one message."""
    try:
        groups = conversation_groups([e["conversation_id"] for e in events])
    except Exception:  # noqa: BLE001 - no database at hand: admins only, never everyone
        log.warning("realtime: conversation groups unknown", exc_info=True)
        groups = {}
    per_group: dict[str, list[dict]] = {}
    for event in events:
        event.setdefault("eid", uuid.uuid4().hex[:16])
        for group in groups.get(event["conversation_id"], [INBOX_GROUP]):
            per_group.setdefault(group, []).append(event)
    return [(group, {"type": "inbox.event", **batch[0]} if len(batch) == 1 else
             {"type": "inbox.events", "events": batch}) for group, batch in per_group.items()]


def user_push(user_id: int, kind: str, **data) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        _send(layer, [(user_group(user_id), {"type": "inbox.event", "kind": kind, **data})])
    except Exception:  # noqa: BLE001 - best-effort, like inbox_push
        log.warning("realtime push to user %s failed", user_id, exc_info=True)


def inbox_push(kind: str, conversation_id: int, **data) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    event = {"kind": kind, "conversation_id": conversation_id, **data}
    try:
        _send(layer, _fan_out([event]))
    except Exception:  # noqa: BLE001 - realtime is best-effort; the page polls as a fallback
        log.warning("realtime push failed for %s on #%s", kind, conversation_id, exc_info=True)


def inbox_push_many(kind: str, conversation_ids: list[int], **data) -> None:
    """inbox_push for a batch: the same events, in one hand-over to the loop."""
    inbox_push_each([(kind, conversation_id, data) for conversation_id in conversation_ids])


def inbox_push_each(pushes: list[tuple[str, int, dict]]) -> None:
    """inbox_push for several (kind, conversation_id, data): one group message
    carrying them all ("inbox.events"), which each browser's consumer unpacks
    into the same frames, in the same order, as one push each. A group_send per
    event was ~0.2 ms of CPU and two Redis round trips each, a third of a
    routing batch's CPU (docs/performance-history.md)."""
    layer = get_channel_layer()
    if layer is None or not pushes:
        return
    events = _coalesced([{"kind": kind, "conversation_id": conversation_id, **data}
                         for kind, conversation_id, data in pushes])
    try:
        _send(layer, _fan_out(events))
    except Exception:  # noqa: BLE001 - realtime is best-effort; the page polls as a fallback
        log.warning("realtime push failed for %d events", len(pushes), exc_info=True)


def inbox_push_on_commit(kind: str, conversation_id: int, **data) -> None:
    """inbox_push once the caller's transaction commits (never about a row rolled back)."""
    transaction.on_commit(lambda: inbox_push(kind, conversation_id, **data))
