"""Reassignment by supervisors: a conversation moved to another queue, many at once (bulk,
chunked in a task when large), and an agent's whole workload handed on (going offline).
Every move is audited and told to routing (a freed agent gets new work)."""
from __future__ import annotations

import logging

from django.db import transaction

from apps.accounts.models import Presence, Role, Team, User
from apps.accounts.permissions import WORKING_ROLES, user_has_role
from apps.accounts.services import agent_availability_notify, audit_record, user_presence_set
from apps.core.errors import DomainError
from apps.core.task_queue import task_named

from .events import event_record
from .models import Conversation, Queue
from .realtime import inbox_push_on_commit
from .selectors import OPEN_STATUSES, conversation_list_for_user, conversations_visible_to
from .services import conversation_assign
from .signals import conversation_work_announce, conversation_work_changed

log = logging.getLogger(__name__)


BULK_ASSIGN_MAX = 5000  # past this, narrow the filter
BULK_SYNC_MAX = 200  # pages and the API move more than this in the background (a Celery task)


def _work_changed(conversation_id: int, freed_agent) -> None:
    """After commit, routing re-times SLAs, offers the moved conversation to its new
    queue's agents and gives the freed agent new work; without routing installed, the
    freed agent's availability is still announced."""
    if conversation_work_changed.has_listeners():
        conversation_work_announce(conversation_id, freed_agent.pk if freed_agent else None)
    elif freed_agent is not None:
        agent_availability_notify(freed_agent)


def _queue_for_team(team):
    queue = team.queues.order_by("-is_default", "name").first()
    if queue is None:
        raise DomainError(f"Team {team.name} has no queue to move conversations into.")
    return queue


@transaction.atomic
def conversation_move(*, conversation: Conversation, queue, actor=None, reason: str = "") -> Conversation:
    """Moves a conversation to another queue. The assignee keeps it only when they
    are a member of the new queue's team; otherwise it waits there unassigned."""
    # of=("self",): PostgreSQL cannot lock the nullable side of the outer joins
    conversation = Conversation.objects.select_for_update(of=("self",)).select_related("queue", "assignee").get(
        pk=conversation.pk)
    old_queue, old_assignee = conversation.queue, conversation.assignee
    if old_queue == queue:
        return conversation
    conversation.queue = queue
    fields = ["queue", "updated_at"]
    keeps = old_assignee is not None and queue.team.members.filter(pk=old_assignee.pk).exists()
    if old_assignee is not None and not keeps:
        conversation.assignee = None
        fields.append("assignee")
    conversation.save(update_fields=fields)
    event_record(
        conversation=conversation, kind="moved", actor=actor, reason=reason,
        from_queue=old_queue.name if old_queue else None, to_queue=queue.name,
        **{"from": old_assignee.username if old_assignee else None,
           "to": old_assignee.username if keeps else None},
    )
    inbox_push_on_commit("conversation_updated", conversation.pk, queue_id=queue.pk)
    freed = old_assignee if old_assignee is not None and not keeps else None
    _work_changed(conversation.pk, freed)
    return conversation


def _require_supervisor(actor) -> None:
    from django.core.exceptions import PermissionDenied


    if not user_has_role(actor, Role.SUPERVISOR, Role.ADMIN):
        raise PermissionDenied("Only supervisors and admins can move work in bulk.")


def _bulk_target_check(*, actor, to_agent, to_team, to_queue):

    _require_supervisor(actor)
    if sum(x is not None for x in (to_agent, to_team, to_queue)) != 1:
        raise DomainError("Pick one target: an agent, a team or a queue.")
    if to_agent is not None:
        if not to_agent.is_active or not user_has_role(to_agent, *WORKING_ROLES):
            raise DomainError(f"{to_agent.username} cannot take conversations.")
        if not user_has_role(actor, Role.ADMIN) and to_agent != actor and not to_agent.teams.filter(
                leads=actor).exists():
            raise DomainError(f"{to_agent.username} is not in a team you lead.")


def _bulk_targets(*, actor, conversations, filters) -> tuple[list[int], int | None]:
    """The ids a bulk move takes (only what the actor can see), and how many were asked for by id."""
    if conversations is not None:
        ids = [getattr(c, "pk", c) for c in conversations]
        qs = conversations_visible_to(actor).filter(pk__in=ids)
        asked = len(set(ids))
    elif filters is not None:
        # queue=none: the unrouted (the inbox list filter knows queue ids only)
        unrouted = str(filters.get("queue", "")) == "none"
        qs = conversation_list_for_user(user=actor, filters={k: v for k, v in filters.items()
                                                             if not (unrouted and k == "queue")})
        if unrouted:
            qs = qs.filter(queue__isnull=True)
        asked = None
    else:
        raise DomainError("Select conversations, or a filter to move all that match it.")
    targets = list(qs.order_by().values_list("pk", flat=True).distinct()[: BULK_ASSIGN_MAX + 1])
    if len(targets) > BULK_ASSIGN_MAX:
        raise DomainError(f"More than {BULK_ASSIGN_MAX} conversations match; narrow the filter.")
    return targets, asked


def conversations_bulk_preview(*, conversations=None, filters: dict | None = None, to_agent=None, to_team=None,
                               to_queue=None, actor) -> dict:
    """What conversations_bulk_assign with the same arguments would do, without doing it: the
    confirmation step's figures. `matched`: conversations taken; `change`: those not already with
    the target (the others stay as they are). Refused as the move would be (DomainError)."""
    _bulk_target_check(actor=actor, to_agent=to_agent, to_team=to_team, to_queue=to_queue)
    targets, _ = _bulk_targets(actor=actor, conversations=conversations, filters=filters)
    queue = to_queue if to_queue is not None else (_queue_for_team(to_team) if to_team is not None else None)
    rows = Conversation.objects.filter(pk__in=targets)
    stay = rows.filter(assignee=to_agent) if to_agent is not None else rows.filter(queue=queue)
    return {"matched": len(targets), "change": len(targets) - stay.count()}


def conversations_bulk_assign(
    *, conversations=None, filters: dict | None = None, to_agent=None, to_team=None, to_queue=None,
    actor, reason: str = "", background_over: int | None = None,
) -> dict:
    """Moves many conversations at once: the ones given (objects or ids), or all
    matching `filters` (the inbox list's filters), to an agent, a team (its
    default queue) or a queue. Only conversations the actor can see are moved.
    Each move writes its own audit event (who, when, why); returns counts."""
    _bulk_target_check(actor=actor, to_agent=to_agent, to_team=to_team, to_queue=to_queue)
    reason = (reason or "").strip()[:500]
    targets, asked = _bulk_targets(actor=actor, conversations=conversations, filters=filters)
    queue = to_queue if to_queue is not None else (_queue_for_team(to_team) if to_team is not None else None)
    skipped = (asked - len(targets)) if asked is not None else 0
    if background_over is not None and len(targets) > background_over:
        # Many rows (about 10 ms each): a task moves them in chunks, each move audited as usual.
        payload = {"ids": targets, "actor_id": actor.pk, "reason": reason,
                   "to_agent_id": getattr(to_agent, "pk", None), "to_queue_id": getattr(queue, "pk", None)}
        audit_record(actor=actor, action="conversations.bulk_queued", target=str(to_agent or queue),
                     data={"matched": len(targets), "reason": reason})
        transaction.on_commit(lambda: task_named("accounts.bulk_assign").delay(**payload))
        return {"matched": len(targets), "moved": 0, "unchanged": 0, "not_visible": skipped,
                "queued": len(targets)}
    moved = 0
    with transaction.atomic():
        for conversation in Conversation.objects.filter(pk__in=targets).select_related("queue", "assignee"):
            if to_agent is not None:
                if conversation.assignee_id != to_agent.pk:
                    conversation_assign(conversation=conversation, assignee=to_agent, actor=actor,
                                        reason=reason or "bulk reassignment")
                    moved += 1
            elif conversation.queue_id != queue.pk:
                conversation_move(conversation=conversation, queue=queue, actor=actor,
                                  reason=reason or "bulk move")
                moved += 1
        target = (f"agent {to_agent.username}" if to_agent else f"team {to_team.name}" if to_team
                  else f"queue {to_queue.name}")
        audit_record(actor=actor, action="conversations.bulk_moved", target=target,
                     data={"moved": moved, "matched": len(targets), "reason": reason,
                           "filters": {k: str(v) for k, v in (filters or {}).items()} if filters else None,
                           "conversation_ids": targets[:200]})
    return {"matched": len(targets), "moved": moved, "unchanged": len(targets) - moved, "not_visible": skipped}


def agent_workload_preview(*, agent, actor) -> dict:
    """What "move workload" would move, before it does (the confirm page): the agent's open
    conversations, and how many of them lie outside what the actor may see."""
    open_ids = Conversation.objects.filter(assignee=agent, status__in=OPEN_STATUSES).values_list("pk", flat=True)
    total = open_ids.count()
    visible = conversations_visible_to(actor).filter(pk__in=open_ids).count()
    return {"open": total, "visible": visible, "not_visible": total - visible}


def agent_workload_move(*, agent, to=None, actor, reason: str = "", go_offline: bool = False) -> dict:
    """Moves all of an agent's open conversations (off shift, sick, leaving): to
    another agent, a team or a queue (a User, Team or Queue), or with to=None back
    to their queues unassigned. With go_offline the agent is set offline first,
    so auto-assignment gives them nothing new."""

    if to is not None and to == agent:
        raise DomainError("Pick someone else to take the workload.")
    with transaction.atomic():
        if go_offline:
            user_presence_set(user=agent, presence=Presence.OFFLINE, manual=True, actor=actor)
        open_ids = list(Conversation.objects.filter(assignee=agent, status__in=OPEN_STATUSES)
                        .values_list("pk", flat=True))
        if to is None:
            _require_supervisor(actor)
            reason = (reason or "").strip()[:500] or "workload returned to queue"
            visible = list(conversations_visible_to(actor).filter(pk__in=open_ids))
            for conversation in visible:
                conversation_assign(conversation=conversation, assignee=None, actor=actor, reason=reason)
            audit_record(actor=actor, action="agent.workload_moved", target=agent.username,
                         data={"to": None, "moved": len(visible), "reason": reason})
            return {"matched": len(visible), "moved": len(visible), "unchanged": 0,
                    "not_visible": len(open_ids) - len(visible)}
        kwargs = {"to_agent": to if isinstance(to, User) else None, "to_team": to if isinstance(to, Team) else None,
                  "to_queue": to if isinstance(to, Queue) else None}
        result = conversations_bulk_assign(conversations=list(open_ids), actor=actor,
                                           reason=reason or f"workload of {agent.username} moved", **kwargs)
        audit_record(actor=actor, action="agent.workload_moved", target=agent.username,
                     data={"to": str(to), "moved": result["moved"], "reason": reason})
    return result
