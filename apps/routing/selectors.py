"""Reads for routing."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.utils import timezone

from apps.accounts.models import Role, Team, User
from apps.inbox.models import Queue

from .models import RoutingRule, SlaPolicy, UnroutedMessage


def messages_unrouted(*, older_than: dt.timedelta, limit: int = 500) -> list[tuple[int, list[int]]]:
    """Customer messages stored more than `older_than` ago that routing never took,
    as [(conversation_id, [message_ids])]: their routing task was lost (Redis down
    when it was queued, or a crash) or keeps failing. Reads UnroutedMessage (the
    in-flight messages only), oldest first."""
    rows = (UnroutedMessage.objects.filter(message__created_at__lt=timezone.now() - older_than)
            .order_by("message_id").values_list("message__conversation_id", "message_id")[:limit])
    pairs: dict[int, list[int]] = defaultdict(list)
    for conversation_id, message_id in rows:
        pairs[conversation_id].append(message_id)
    return list(pairs.items())


def queues_visible_to(user):
    """Queues a user may see (docs/roles.md, Ownership): admins all; supervisors the
    teams they lead or belong to; agents their teams'; others none. Another team's
    queue is a 404, like its conversations."""
    from django.db.models import Q

    qs = Queue.objects.select_related("team").order_by("name")
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if user.is_superuser or user.role == Role.ADMIN:
        return qs
    if user.role == Role.SUPERVISOR:
        teams = Team.objects.filter(Q(leads=user) | Q(members=user)).values("pk")
    elif user.role == Role.AGENT:
        teams = Team.objects.filter(members=user).values("pk")
    else:
        return qs.none()
    return qs.filter(team__in=teams)


def queues_managed_by(user):
    """Queues a user may change: admins all, supervisors the teams they lead."""
    qs = Queue.objects.select_related("team").order_by("name")
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if user.is_superuser or user.role == Role.ADMIN:
        return qs
    if user.role == Role.SUPERVISOR:
        return qs.filter(team__in=Team.objects.filter(leads=user).values("pk"))
    return qs.none()


def sla_policies_visible_to(user, *, for_write: bool = False):
    """Global policies (no queue) and those of the queues the user sees (for_write:
    manages). Another team's queue's policy is a 404."""
    from django.db.models import Q

    queues = queues_managed_by(user) if for_write else queues_visible_to(user)
    return (SlaPolicy.objects.select_related("queue")
            .filter(Q(queue__isnull=True) | Q(queue__in=queues.values("pk")))
            .order_by("queue__name", "priority_bucket", "id"))


def rules_managed_by(user):
    """Rules are global configuration, but one that routes to a team (its queue, its
    agent, its team, its hours) is that team's: a supervisor changes only rules that
    name nothing outside the teams they lead. Admins: all."""
    from django.db.models import Q

    qs = RoutingRule.objects.all()
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if user.is_superuser or user.role == Role.ADMIN:
        return qs
    if user.role != Role.SUPERVISOR:
        return qs.none()
    led = Team.objects.filter(leads=user).values("pk")
    queues = queues_managed_by(user).values("pk")
    agents = User.objects.filter(teams__in=led).values("pk")
    return qs.filter(Q(set_queue__isnull=True) | Q(set_queue__in=queues),
                     Q(assign_team__isnull=True) | Q(assign_team__in=led),
                     Q(hours_team__isnull=True) | Q(hours_team__in=led),
                     Q(assign_agent__isnull=True) | Q(assign_agent__in=agents))
