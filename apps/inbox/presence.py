"""Who is looking at a conversation, and who is typing in it (collision control).

Kept in the cache (Redis in production, shared by every web process), never in
the database: it is short-lived and best-effort. Browsers refresh their mark
with a heartbeat over the websocket, or over HTTP when there is none."""
from __future__ import annotations

import time

from django.core.cache import cache

VIEW_TTL = 45  # seconds a viewer stays listed without a heartbeat
TYPING_TTL = 8  # seconds "typing" lasts after the last keystroke signal


def _key(conversation_id: int) -> str:
    return f"presence:conv:{conversation_id}"


def _live(entries: dict, now: float) -> list[dict]:
    people = []
    for user_id, entry in entries.items():
        if now - entry["at"] > VIEW_TTL:
            continue
        people.append({"user_id": int(user_id), "name": entry["name"],
                       "typing": now - entry.get("typing_at", 0) <= TYPING_TTL})
    return sorted(people, key=lambda p: p["name"].lower())


def presence_touch(*, conversation_id: int, user, typing: bool | None = None) -> list[dict]:
    """Marks `user` as viewing (and typing, or no longer typing); returns everyone there.
    A read-modify-write without a lock: two heartbeats racing lose one mark for one beat."""
    now = time.time()
    entries = cache.get(_key(conversation_id)) or {}
    entry = entries.get(str(user.pk), {})
    entry.update(name=user.display_name, at=now)
    if typing is True:
        entry["typing_at"] = now
    elif typing is False:
        entry.pop("typing_at", None)
    entries[str(user.pk)] = entry
    entries = {k: v for k, v in entries.items() if now - v["at"] <= VIEW_TTL}
    cache.set(_key(conversation_id), entries, VIEW_TTL * 2)
    return _live(entries, now)


def presence_leave(*, conversation_id: int, user_id: int) -> list[dict]:
    entries = cache.get(_key(conversation_id)) or {}
    if entries.pop(str(user_id), None) is not None:
        cache.set(_key(conversation_id), entries, VIEW_TTL * 2)
    return _live(entries, time.time())


def presence_for(conversation_ids) -> dict[int, list[dict]]:
    """Viewers per conversation for a page of the list, in one cache round trip."""
    ids = list(conversation_ids)
    if not ids:
        return {}
    found = cache.get_many([_key(i) for i in ids])
    now = time.time()
    return {i: _live(found.get(_key(i)) or {}, now) for i in ids}
