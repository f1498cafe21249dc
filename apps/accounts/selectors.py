"""Reads for the supervisor tools: the live dashboard, agents and their load,
the audit log (conversation events + AuditEntry rows merged by time)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
from typing import Iterable, Iterator

from django.conf import settings
from django.db.models import Case, Count, IntegerField, Min, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from apps.core.params import int_param, text_param, when_param
from apps.inbox.models import CannedResponse, Conversation, ConversationEvent, Status
from apps.routing.models import Queue

from .models import ApiToken, AuditEntry, Role, Team, User
from .permissions import user_has_role

OPEN_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING)
WAITING_STATUSES = (Status.NEW, Status.OPEN)
PRESENCE_ORDER = Case(When(presence="online", then=Value(0)), When(presence="away", then=Value(1)),
                      default=Value(2), output_field=IntegerField())


# --- scope --------------------------------------------------------------------------------------------

def teams_managed_by(user) -> QuerySet[Team]:
    """Admins: every team. Supervisors: the teams they lead. Others: none."""
    if user_has_role(user, Role.ADMIN):
        return Team.objects.all()
    if user_has_role(user, Role.SUPERVISOR):
        return Team.objects.filter(leads=user)
    return Team.objects.none()


def queues_managed_by(user) -> QuerySet[Queue]:
    if user_has_role(user, Role.ADMIN):
        return Queue.objects.select_related("team")
    return Queue.objects.filter(team__in=teams_managed_by(user).values("pk")).select_related("team")


def agents_managed_by(user) -> QuerySet[User]:
    """Working users in the teams the user manages (admins: all working users)."""
    qs = User.objects.filter(is_active=True, role__in=[Role.AGENT, Role.SUPERVISOR, Role.ADMIN])
    if not user_has_role(user, Role.ADMIN):
        qs = qs.filter(teams__in=teams_managed_by(user).values("pk")).distinct()
    return qs


# --- dashboard ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class QueueStats:
    queue_id: int | None
    name: str
    team: str
    open: int = 0
    waiting: int = 0
    oldest_waiting_since: dt.datetime | None = None
    at_risk: int = 0
    breached: int = 0

    @property
    def oldest_wait_seconds(self) -> int | None:
        if self.oldest_waiting_since is None:
            return None
        return max(0, int((timezone.now() - self.oldest_waiting_since).total_seconds()))


def _queue_aggregates(now: dt.datetime) -> dict:
    risk_until = now + dt.timedelta(minutes=settings.SLA_AT_RISK_MINUTES)
    waiting = Q(status__in=WAITING_STATUSES, assignee__isnull=True)
    breached = Q(sla_breached=True) | Q(sla_due_at__lt=now)
    return {
        "open": Count("id"),
        "waiting": Count("id", filter=waiting),
        # the current cycle: a conversation reopened today has waited since today
        "oldest_waiting_since": Min(Coalesce("cycle_started_at", "created_at"), filter=waiting),
        "at_risk": Count("id", filter=Q(sla_breached=False, sla_due_at__gte=now, sla_due_at__lte=risk_until)),
        "breached": Count("id", filter=breached),
    }


def dashboard_snapshot(*, user, now: dt.datetime | None = None) -> dict:
    """Per queue: open, waiting (unassigned new/open), oldest wait, SLA at risk
    (due within SLA_AT_RISK_MINUTES) and breached; the agents and their load.
    A fixed number of queries whatever the size (asserted in tests)."""
    now = now or timezone.now()
    queues = list(queues_managed_by(user).order_by("name"))
    rows = {q.pk: QueueStats(queue_id=q.pk, name=q.name, team=q.team.name) for q in queues}
    base = Conversation.objects.filter(status__in=OPEN_STATUSES, is_spam=False)
    aggregates = _queue_aggregates(now)
    for row in base.filter(queue__in=[q.pk for q in queues]).values("queue_id").annotate(**aggregates).order_by():
        stats = rows[row.pop("queue_id")]
        for key, value in row.items():
            setattr(stats, key, value)
    unrouted = None
    if user_has_role(user, Role.SUPERVISOR, Role.ADMIN):
        # Not yet in a queue: agents cannot see these, so supervisors must (docs/roles.md).
        agg = base.filter(queue__isnull=True).aggregate(**aggregates)
        unrouted = QueueStats(queue_id=None, name="Unrouted", team="-", **agg)
    agents = _with_loads(list(agents_managed_by(user).order_by(PRESENCE_ORDER, "username")))
    queue_rows = list(rows.values()) + ([unrouted] if unrouted else [])
    totals = {k: sum(getattr(r, k) for r in queue_rows) for k in ("open", "waiting", "at_risk", "breached")}
    return {
        "now": now,
        "queues": queue_rows,
        "agents": agents,
        "agents_online": sum(1 for a in agents if a.presence == "online"),
        "totals": totals,
        "at_risk_minutes": settings.SLA_AT_RISK_MINUTES,
    }


def _with_loads(agents: list[User]) -> list[User]:
    """Sets `load` (open conversations assigned) on each: one grouped query on the
    (assignee, status) index, cheaper than a COUNT over a join with DISTINCT."""
    counts = dict(
        Conversation.objects.filter(assignee_id__in=[a.pk for a in agents], status__in=OPEN_STATUSES)
        .values("assignee_id").annotate(n=Count("id")).order_by().values_list("assignee_id", "n")
    )
    for agent in agents:
        agent.load = counts.get(agent.pk, 0)
    return agents


def users_with_load(users) -> list[User]:
    """The users (any iterable or queryset) with `load` set: one grouped query."""
    return _with_loads(list(users))


def agents_with_load(*, user) -> list[User]:
    return _with_loads(list(agents_managed_by(user).prefetch_related("teams").order_by("username")))


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
    from apps.inbox.selectors import conversations_visible_to

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


# --- canned responses and tokens ------------------------------------------------------------------------

def canned_responses_for(user) -> QuerySet[CannedResponse]:
    """Global ones plus those of the user's teams (member or lead); admins: all."""
    qs = CannedResponse.objects.select_related("team").order_by("team__name", "shortcut")
    if user_has_role(user, Role.ADMIN):
        return qs
    if not user_has_role(user, Role.AGENT, Role.SUPERVISOR):
        return qs.none()
    teams = Team.objects.filter(Q(members=user) | Q(leads=user)).values("pk")
    return qs.filter(Q(team__isnull=True) | Q(team__in=teams))


def api_tokens_for(user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("revoked_at", "-created_at")
