"""Who gets a conversation: the candidate agents locked in one statement (id order, so two
routers never deadlock), their open loads counted under those locks, availability (presence
and capacity per channel), and the picker (round robin by last assignment, or least busy).
Every assignment happens under the agent's row lock, so the load counted is the real one."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Q

from apps.accounts.models import Presence, Role, Team, User
from apps.core.db import rows_update
from apps.inbox.models import OPEN_STATUSES, Conversation, Queue, Status

from .models import QueueMemberState
from .trail import Trail

# What routing and a backlog drain may hand to an agent (pending and snoozed work waits).
ASSIGNABLE_STATUSES = (Status.NEW, Status.OPEN)


def agents_lock(*, team_ids=(), ids=()) -> dict[int, User]:
    """Row-locks the online agents of the teams and the agents named by id, in id
    order (one statement, so every locker takes them in the same order: no
    deadlock between routers and drains). Each agent comes with `routing_teams`:
    which of these teams they are a member of."""
    ids = sorted({i for i in ids if i})
    team_ids = sorted({t for t in team_ids if t})
    if not ids and not team_ids:
        return {}
    members = Team.members.through.objects.filter(team_id__in=team_ids)
    wanted = Q(pk__in=ids)
    if team_ids:
        wanted |= Q(pk__in=members.values("user_id"), role=Role.AGENT, is_active=True, presence=Presence.ONLINE)
    locked = {u.pk: u for u in User.objects.select_for_update(of=("self",)).filter(wanted).order_by("pk")}
    teams: dict[int, set[int]] = defaultdict(set)
    if team_ids and locked:
        for team_id, user_id in members.filter(user_id__in=list(locked)).values_list("team_id", "user_id"):
            teams[user_id].add(team_id)
    for agent in locked.values():
        agent.routing_teams = frozenset(teams.get(agent.pk, ()))
    return locked


def team_candidates(locked: dict[int, User], team_id: int | None) -> list[User]:
    return [a for a in locked.values() if team_id in a.routing_teams and a.role == Role.AGENT and agent_is_available(a)]


@dataclass
class AgentLoads:
    total: dict[int, int] = field(default_factory=dict)
    by_channel: dict[tuple[int, str], int] = field(default_factory=dict)

    def add(self, agent_id: int, provider: str, n: int = 1) -> None:
        self.total[agent_id] = self.total.get(agent_id, 0) + n
        self.by_channel[(agent_id, provider)] = self.by_channel.get((agent_id, provider), 0) + n


def agent_loads(agent_ids) -> AgentLoads:
    loads = AgentLoads()
    agent_ids = list(agent_ids)
    if not agent_ids:
        return loads
    rows = (Conversation.objects.filter(assignee_id__in=agent_ids, status__in=OPEN_STATUSES)
            .values("assignee_id", "channel_account__provider").annotate(n=Count("id")).order_by())
    for row in rows:
        aid, provider = row["assignee_id"], row["channel_account__provider"]
        loads.total[aid] = loads.total.get(aid, 0) + row["n"]
        loads.by_channel[(aid, provider)] = row["n"]
    return loads


def has_room(agent: User, loads: AgentLoads, provider: str) -> bool:
    if loads.total.get(agent.pk, 0) >= agent.capacity:
        return False
    if provider in (agent.channel_capacity or {}):
        return loads.by_channel.get((agent.pk, provider), 0) < agent.capacity_for(provider)
    return True


def agent_is_available(agent: User | None) -> bool:
    return bool(agent and agent.is_active and agent.presence == Presence.ONLINE)


def last_assigned(queue_ids, agent_ids) -> dict[int, dict[int, dt.datetime]]:
    """queue id -> {agent id: when round robin last gave them one of its conversations}."""
    out: dict[int, dict[int, dt.datetime]] = defaultdict(dict)
    if queue_ids and agent_ids:
        for queue_id, agent_id, at in QueueMemberState.objects.filter(
                queue_id__in=list(queue_ids), agent_id__in=list(agent_ids)).values_list(
                "queue_id", "agent_id", "last_assigned_at"):
            out[queue_id][agent_id] = at
    return out


class AgentPicker:
    """Chooses among locked agents by the queue's mode, keeping loads current.
    Pickers of one batch share its loads, so an agent in two queues is counted once."""

    def __init__(self, agents: list[User], queue: Queue | None, mode: str, *, loads: AgentLoads | None = None,
                 last: dict[int, dt.datetime] | None = None):
        self.agents, self.queue, self.mode = agents, queue, mode
        self.loads = loads if loads is not None else agent_loads([a.pk for a in agents])
        if last is None and queue is not None:
            last = last_assigned([queue.pk], [a.pk for a in agents])[queue.pk]
        self.last: dict[int, dt.datetime] = dict(last or {})
        self.taken: dict[int, dt.datetime] = {}

    def pick(self, provider: str, exclude=()) -> User | None:
        epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
        room = [a for a in self.agents if a.pk not in exclude and has_room(a, self.loads, provider)]
        if not room:
            return None
        if self.mode == Queue.AssignmentMode.LEAST_LOADED:
            key = lambda a: (self.loads.total.get(a.pk, 0), self.last.get(a.pk, epoch), a.pk)  # noqa: E731
        else:
            key = lambda a: (self.last.get(a.pk, epoch), a.pk)  # noqa: E731
        return min(room, key=key)

    def took(self, agent: User, provider: str, at: dt.datetime) -> None:
        self.loads.add(agent.pk, provider)
        self.last[agent.pk] = at
        if self.queue is not None:
            self.taken[agent.pk] = at

    def save(self) -> None:
        """The round-robin turns taken, in one upsert (under the agents' row locks:
        no one else writes these rows now)."""
        if self.queue is None or not self.taken:
            return
        QueueMemberState.objects.bulk_create(
            [QueueMemberState(queue=self.queue, agent_id=agent_id, last_assigned_at=at)
             for agent_id, at in sorted(self.taken.items())],
            update_conflicts=True, unique_fields=["queue", "agent"], update_fields=["last_assigned_at"])
        self.taken = {}


def assignment_apply(conversation: Conversation, agent: User, trail: Trail, *, by: str, reason: str) -> None:
    """In memory and on the trail; the caller writes the row (routing: with the
    batch's conversations; a drain: assignments_save)."""
    old = conversation.assignee
    conversation.assignee = agent
    conversation.last_assignee = agent
    trail.event(conversation, "assigned", by=by, reason=reason, to=agent.username,
                **{"from": old.username if old else None})
    trail.push("assigned", conversation.pk, assignee_id=agent.pk)


def assignments_save(conversations: list[Conversation], now: dt.datetime) -> None:
    for conversation in conversations:
        conversation.updated_at = now
    rows_update(conversations, ["assignee", "last_assignee", "updated_at"])
