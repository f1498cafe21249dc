"""Work waiting for agents: a queue's backlog drained while its online agents have room (an
agent came online, a conversation resolved or moved away), and the follow-up after an
agent's work on a conversation (its SLA due times brought up to date, a freed agent's next
conversation). Locks as the pipeline takes them (services.py): the team's agents in id
order, then waiting conversations with SKIP LOCKED, never a row a router holds."""
from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import User
from apps.core.task_queue import task_named
from apps.inbox.models import Conversation, Queue

from .assignment import (ASSIGNABLE_STATUSES, AgentPicker, agent_is_available, agents_lock, assignment_apply,
                         assignments_save, team_candidates)
from .models import ConversationRouting
from .sla import DONE_STATUSES, SLA_FIELDS, sla_apply, waiting_since
from .trail import Trail


def backlog_drain(*, queue_id: int, exclude_agent_ids=(), now: dt.datetime | None = None) -> list[int]:
    """Assigns waiting conversations of an auto-assigning queue, urgent and
    oldest first, while its online agents have room. Returns the ids assigned."""
    now = now or timezone.now()
    queue = Queue.objects.filter(pk=queue_id).first()
    if queue is None or queue.assignment_mode == Queue.AssignmentMode.MANUAL:
        return []
    trail, assigned = Trail(), []
    with transaction.atomic():
        agents = team_candidates(agents_lock(team_ids=[queue.team_id]), queue.team_id)
        if not agents:
            return []
        picker = AgentPicker(agents, queue, queue.assignment_mode)
        room = sum(max(0, a.capacity - picker.loads.total.get(a.pk, 0)) for a in agents)
        if room <= 0:
            return []
        waiting = list(
            Conversation.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("channel_account")
            .filter(queue=queue, assignee__isnull=True, status__in=ASSIGNABLE_STATUSES, is_spam=False)
            .filter(Q(snoozed_until__isnull=True) | Q(snoozed_until__lte=now))
            .order_by("priority_bucket", "cycle_started_at", "id")[:room]
        )
        for conversation in waiting:
            provider = conversation.channel_account.provider
            agent = picker.pick(provider, exclude=exclude_agent_ids)
            if agent is None:
                continue
            picker.took(agent, provider, now)
            assignment_apply(conversation, agent, trail, by=queue.assignment_mode,
                    reason=f"backlog of {queue.name}: {Queue.AssignmentMode(queue.assignment_mode).label.lower()}")
            assigned.append(conversation)
        if assigned:
            assignments_save(assigned, now)
            picker.save()
            trail.write()
    return [c.pk for c in assigned]


def agent_available(*, agent_id: int) -> list[int]:
    """Drains the backlog of every auto-assigning queue of the agent's teams."""
    agent = User.objects.filter(pk=agent_id).first()
    if not agent_is_available(agent):
        return []
    assigned = []
    for queue_id in (Queue.objects.filter(team__members=agent).exclude(
            assignment_mode=Queue.AssignmentMode.MANUAL).order_by("id").values_list("pk", flat=True)):
        assigned += backlog_drain(queue_id=queue_id)
    return assigned


def agent_availability_changed(*, agent) -> None:
    """An agent came online or has room again (a conversation resolved, closed,
    or moved away): drain the backlog of their queues on the `routing` queue,
    after the caller's transaction commits."""
    agent_id = agent.pk
    transaction.on_commit(lambda: task_named("routing.agent_available").delay(agent_id))


def conversation_work_changed(*, conversation_id: int, freed_agent_id: int | None = None) -> None:
    """Called by inbox services (reply, status, assignment): after commit, the
    SLA due times are brought up to date, and a freed agent gets new work."""
    transaction.on_commit(lambda: task_named("routing.conversation_followup").delay(conversation_id, freed_agent_id))


def conversation_followup(*, conversation_id: int, freed_agent_id: int | None = None) -> None:
    now = timezone.now()
    trail = Trail()
    with transaction.atomic():
        conversation = (Conversation.objects.select_for_update(of=("self",)).select_related("queue")
                        .filter(pk=conversation_id).first())
        if conversation is None:
            return
        state = (ConversationRouting.objects.select_for_update().filter(conversation=conversation).first()
                 or ConversationRouting.objects.create(conversation=conversation))
        state.waiting_since = waiting_since(conversation) if conversation.status not in DONE_STATUSES else None
        sla_apply(conversation, state, now, trail, record=False)
        conversation.save(update_fields=SLA_FIELDS)
        state.save()
        trail.write()
    if freed_agent_id:
        agent_available(agent_id=freed_agent_id)
    if (conversation.assignee_id is None and conversation.queue_id and conversation.status in ASSIGNABLE_STATUSES
            and not conversation.is_spam):
        backlog_drain(queue_id=conversation.queue_id, exclude_agent_ids=(freed_agent_id,) if freed_agent_id else ())
