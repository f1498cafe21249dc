"""Reads for the inbox and the API. Visibility by role lives here, once."""
from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from apps.accounts.models import Role

from .models import Conversation, ConversationEvent, Message, Note


def conversations_visible_to(user) -> QuerySet[Conversation]:
    """Admins: all. Supervisors: their teams' queues (member or lead). Agents:
    their teams' queues, plus what is assigned to them, plus the not yet routed.
    Marketing: none (reports only)."""
    qs = Conversation.objects.all()
    if not user.is_authenticated:
        return qs.none()
    if user.is_superuser or user.role == Role.ADMIN:
        return qs
    if user.role == Role.MARKETING:
        return qs.none()
    team_filter = Q(queue__team__members=user)
    if user.role == Role.SUPERVISOR:
        team_filter |= Q(queue__team__leads=user)
    visible = team_filter | Q(assignee=user) | Q(queue__isnull=True)
    return qs.filter(pk__in=Conversation.objects.filter(visible).values("pk"))


def conversation_list_for_user(*, user, filters: dict | None = None) -> QuerySet[Conversation]:
    filters = filters or {}
    qs = conversations_visible_to(user).select_related(
        "channel_account", "identity", "customer", "queue", "assignee"
    ).prefetch_related("tags")
    if filters.get("status"):
        qs = qs.filter(status__in=str(filters["status"]).split(","))
    if filters.get("queue"):
        qs = qs.filter(queue_id=filters["queue"])
    if filters.get("assignee"):
        value = filters["assignee"]
        qs = qs.filter(assignee__isnull=True) if value == "none" else qs.filter(assignee_id=value)
    if filters.get("channel"):
        qs = qs.filter(channel_account__provider=filters["channel"])
    if filters.get("tag"):
        qs = qs.filter(tags__name=filters["tag"])
    if filters.get("q"):
        q = filters["q"]
        qs = qs.filter(
            Q(subject__icontains=q) | Q(identity__handle__icontains=q) | Q(identity__display_name__icontains=q)
        )
    return qs.order_by("priority_bucket", "sla_due_at", "-last_message_at", "-id")


def conversation_thread(*, conversation: Conversation) -> dict:
    messages = list(
        Message.objects.filter(conversation=conversation).select_related("author_identity", "author_user")
        .order_by("sent_at", "id")
    )
    notes = list(Note.objects.filter(conversation=conversation).select_related("author"))
    events = list(ConversationEvent.objects.filter(conversation=conversation).select_related("actor"))
    return {"messages": messages, "notes": notes, "events": events}


def conversation_get_for_user(*, user, conversation_id: int) -> Conversation:
    """Raises Conversation.DoesNotExist when it is not visible: a 404, never a leak."""
    return conversations_visible_to(user).select_related(
        "channel_account", "identity", "customer", "queue", "assignee"
    ).prefetch_related(Prefetch("tags")).get(pk=conversation_id)
