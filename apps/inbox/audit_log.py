"""The audit log a supervisor or admin reads: conversation events and account audit entries
(AuditEntry) merged by time, each filtered to what the reader may see; CSV export streams it."""
from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
from typing import Iterable, Iterator

from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from apps.accounts.models import AuditEntry, Role
from apps.accounts.permissions import user_has_role
from apps.core.params import int_param, text_param, when_param

from .models import ConversationEvent
from .selectors import conversations_visible_to

# --- audit log ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class AuditRow:
    at: dt.datetime
    row_id: str  # "c<id>" conversation event, "a<id>" audit entry: stable across pages
    source: str  # "conversation" | "system"
    actor: str
    action: str
    target: str
    conversation_id: int | None
    reason: str
    data: dict

    def as_dict(self) -> dict:
        return {"at": self.at.isoformat(), "id": self.row_id, "source": self.source, "actor": self.actor,
                "action": self.action, "target": self.target, "conversation_id": self.conversation_id,
                "reason": self.reason, "data": self.data}


CSV_FIELDS = ["at", "id", "source", "actor", "action", "target", "conversation_id", "reason", "data"]


def _parse_when(value, end=False, name="since"):
    """A date (that whole day, UTC) or an ISO time; BadParameter (400) for an impossible
    or out-of-range one (2024-02-31, 9999-12-31): once a silent 500, and a CSV export
    that failed inside its stream."""
    text = text_param(name, value, max_length=40)
    if not text:
        return None
    when = when_param(name, text)  # validates: raises BadParameter
    if parse_datetime(text) is None:
        return dt.datetime.combine(parse_date(text), dt.time.max if end else dt.time.min, tzinfo=dt.timezone.utc)
    return when if timezone.is_aware(parse_datetime(text)) else timezone.make_aware(
        parse_datetime(text), dt.timezone.utc)


def _audit_querysets(*, user, filters: dict):
    """The two filtered sources, each newest first; None where a filter rules a source out."""
    events = ConversationEvent.objects.select_related("actor").order_by("-created_at", "-id")
    entries = AuditEntry.objects.select_related("actor").order_by("-created_at", "-id")
    if not user_has_role(user, Role.ADMIN):
        events = events.filter(conversation__in=conversations_visible_to(user).values("pk"))
    source = filters.get("source")

    since, until = _parse_when(filters.get("since")), _parse_when(filters.get("until"), end=True, name="until")
    before = _parse_when(filters.get("before"), name="before")
    action = text_param("action", filters.get("action"), max_length=100)
    actor = text_param("actor", filters.get("actor"), max_length=150)
    conversation = int_param("conversation", filters.get("conversation"))
    for name, when, op in (("since", since, "gte"), ("until", until, "lte"), ("before", before, "lt")):
        if when is not None:
            events = events.filter(**{f"created_at__{op}": when})
            entries = entries.filter(**{f"created_at__{op}": when})
    if action:
        # "assigned" matches the kind; "auth" matches auth.login, auth.logout...
        events = events.filter(Q(kind=action) | Q(kind__startswith=action + "_"))
        entries = entries.filter(Q(action=action) | Q(action__startswith=action + "."))
    if actor:
        if actor == "system":
            events, entries = events.filter(actor__isnull=True), entries.filter(actor__isnull=True)
        else:
            events, entries = events.filter(actor__username=actor), entries.filter(actor__username=actor)
    if conversation is not None:
        events = events.filter(conversation_id=conversation)
        entries = None
    if source == "conversation":
        entries = None
    elif source == "system":
        events = None
    return events, entries


def _event_row(e: ConversationEvent) -> AuditRow:
    data = dict(e.data or {})
    reason = str(data.pop("reason", "") or "")
    target = f"conversation #{e.conversation_id}"
    if e.kind in ("assigned", "unassigned", "moved") or "to" in data:
        moved_to = data.get("to_queue") or data.get("to")
        if moved_to:
            target += f" → {moved_to}"
    elif e.kind == "status_changed":
        target += f" {data.get('old')} → {data.get('new')}"
    return AuditRow(at=e.created_at, row_id=f"c{e.pk}", source="conversation",
                    actor=e.actor.username if e.actor_id else "system", action=e.kind, target=target,
                    conversation_id=e.conversation_id, reason=reason, data=data)


def _entry_row(a: AuditEntry) -> AuditRow:
    data = dict(a.data or {})
    reason = str(data.pop("reason", "") or "")
    if a.ip_address:
        data["ip"] = a.ip_address
    return AuditRow(at=a.created_at, row_id=f"a{a.pk}", source="system",
                    actor=a.actor.username if a.actor_id else "system", action=a.action, target=a.target,
                    conversation_id=None, reason=reason, data=data)


def audit_log(*, user, filters: dict | None = None, limit: int = 100) -> list[AuditRow]:
    """One page, newest first: at most `limit` rows older than filters["before"]."""
    events, entries = _audit_querysets(user=user, filters=filters or {})
    rows = []
    if events is not None:
        rows += [_event_row(e) for e in events[:limit]]
    if entries is not None:
        rows += [_entry_row(a) for a in entries[:limit]]
    rows.sort(key=lambda r: (r.at, r.row_id), reverse=True)
    return rows[:limit]


def audit_log_iter(*, user, filters: dict | None = None, max_rows: int = 100_000) -> Iterator[AuditRow]:
    """Every matching row, newest first, streamed (CSV export): a merge of two
    server-side cursors, never the whole log in memory. The filters are checked
    here, at the call (BadParameter before a response starts), not in the stream."""
    events, entries = _audit_querysets(user=user, filters=filters or {})
    return _audit_merged(events, entries, max_rows=max_rows)


def _audit_merged(events, entries, *, max_rows: int) -> Iterator[AuditRow]:
    streams: list[Iterable[AuditRow]] = []
    if events is not None:
        streams.append(_event_row(e) for e in events.iterator(chunk_size=2000))
    if entries is not None:
        streams.append(_entry_row(a) for a in entries.iterator(chunk_size=2000))
    merged = heapq.merge(*streams, key=lambda r: r.at, reverse=True)
    for n, row in enumerate(merged):
        if n >= max_rows:
            return
        yield row
