"""Reads for the supervisor tools: the live dashboard (each queue's conversations waiting for an
agent's reply, unassigned, open and the oldest wait, and what waits unrouted) and agents with
their open load."""
from __future__ import annotations

import dataclasses
import datetime as dt

from django.conf import settings
from django.db.models import Case, Count, Exists, IntegerField, Min, OuterRef, Q, Subquery, Value, When
from django.utils import timezone

from apps.accounts.models import Role, User
from apps.accounts.permissions import user_has_role
from apps.accounts.selectors import agents_managed_by
from apps.inbox.models import OPEN_STATUSES, Conversation, Message, Status

from .selectors import queues_managed_by

WAITING_STATUSES = (Status.NEW, Status.OPEN)
PRESENCE_ORDER = Case(When(presence="online", then=Value(0)), When(presence="away", then=Value(1)),
                      default=Value(2), output_field=IntegerField())


# --- dashboard ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class QueueStats:
    queue_id: int | None
    name: str
    team: str
    open: int = 0
    waiting: int = 0
    unassigned: int = 0
    oldest_waiting_since: dt.datetime | None = None
    at_risk: int = 0
    breached: int = 0

    @property
    def oldest_wait_seconds(self) -> int | None:
        if self.oldest_waiting_since is None:
            return None
        return max(0, int((timezone.now() - self.oldest_waiting_since).total_seconds()))


def _unanswered_messages():
    """The conversation's customer messages no person has answered: no human reply (bots don't
    count, a failed send doesn't either) at or after them. The definition sla.waiting_since_many
    uses for the next-response target, read here per conversation."""
    answered = Message.objects.filter(conversation_id=OuterRef("conversation_id"), direction=Message.Direction.OUTBOUND,
                                      is_bot=False, sent_at__gte=OuterRef("sent_at")).exclude(
        send_status=Message.SendStatus.FAILED)
    return Message.objects.filter(conversation_id=OuterRef("pk"), direction=Message.Direction.INBOUND).exclude(
        Exists(answered))


def _queue_aggregates(now: dt.datetime) -> dict:
    risk_until = now + dt.timedelta(minutes=settings.SLA_AT_RISK_MINUTES)
    unanswered = _unanswered_messages()
    # Waiting: open and the customer's last word has no reply yet, whoever it is assigned to.
    waiting = Q(status__in=WAITING_STATUSES) & Q(Exists(unanswered))
    breached = Q(sla_breached=True) | Q(sla_due_at__lt=now)
    return {
        "open": Count("id"),
        "waiting": Count("id", filter=waiting),
        "unassigned": Count("id", filter=Q(status__in=WAITING_STATUSES, assignee__isnull=True)),
        # since the first customer message no one has answered (null where nobody waits)
        "oldest_waiting_since": Min(Subquery(unanswered.order_by("sent_at").values("sent_at")[:1]),
                                    filter=Q(status__in=WAITING_STATUSES)),
        "at_risk": Count("id", filter=Q(sla_breached=False, sla_due_at__gte=now, sla_due_at__lte=risk_until)),
        "breached": Count("id", filter=breached),
    }


def dashboard_snapshot(*, user, now: dt.datetime | None = None) -> dict:
    """Per queue: open, waiting (new/open with a customer message no person has answered yet),
    unassigned (new/open with no assignee), the oldest wait, SLA at risk
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
    totals = {k: sum(getattr(r, k) for r in queue_rows) for k in ("open", "waiting", "unassigned", "at_risk", "breached")}
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
