"""Writes on conversations: replies, sending, assignment, status, notes.

Each service does the whole state change: rows, the audit event, the live push
and the tasks it fires, all after commit."""
from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from apps.connectors.providers import get_provider
from apps.connectors.providers.base import AuthError, OutboundReply, ProviderError, RateLimited, UnknownOutcome
from apps.core.errors import Conflict, DomainError

from .events import event_record
from .models import Conversation, Message, Note, Status
from .realtime import inbox_push

log = logging.getLogger(__name__)


def _on_commit_push(kind: str, conversation_id: int, **data) -> None:
    transaction.on_commit(lambda: inbox_push(kind, conversation_id, **data))


def reply_create(
    *, conversation: Conversation, agent, text: str, private: bool = False,
    draft_started_at: dt.datetime | None = None, is_bot: bool = False,
) -> Message:
    """Stores the reply as `queued` and hands it to the outbound task.

    Refused when the thread moved on after the draft began: a newer customer
    message, or another agent's reply. `is_bot` marks automatic messages
    (auto-replies, survey links): sent the same way, but they are not a human
    response, so they leave status, first response and assignment alone."""
    text = (text or "").strip()
    if not text:
        raise DomainError("The reply is empty.")
    provider_cls = get_provider(conversation.channel_account).__class__
    if len(text) > provider_cls.max_reply_length:
        raise DomainError(
            f"The reply is {len(text)} characters; {conversation.channel_account.get_provider_display()} "
            f"allows {provider_cls.max_reply_length}."
        )
    if private and not provider_cls.supports_private_replies:
        raise DomainError("This network does not take direct messages.")
    if conversation.status == Status.CLOSED:
        raise DomainError("This conversation is closed.")
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if draft_started_at is not None:
            newer = conversation.messages.filter(created_at__gt=draft_started_at).exclude(author_user=agent)
            newer_in = newer.filter(direction=Message.Direction.INBOUND).exists()
            newer_out = newer.filter(direction=Message.Direction.OUTBOUND, is_bot=False).exists()
            if newer_in or newer_out:
                who = "the customer sent a new message" if newer_in else "another agent replied"
                raise Conflict(f"Not sent: {who} after you started this draft. Read it, then send again.")
        last_in = conversation.messages.filter(direction=Message.Direction.INBOUND).order_by("-sent_at", "-id").first()
        now = timezone.now()
        message = Message.objects.create(
            conversation=conversation, channel_account=conversation.channel_account,
            direction=Message.Direction.OUTBOUND, kind=Message.Kind.PRIVATE if private else Message.Kind.PUBLIC,
            in_reply_to_external_id=last_in.external_id if last_in else "", author_user=agent, text=text,
            sent_at=now, send_status=Message.SendStatus.QUEUED, draft_started_at=draft_started_at, is_bot=is_bot,
        )
        fields = ["last_message_at", "last_outbound_at", "updated_at"]
        conversation.last_message_at = conversation.last_outbound_at = now
        if conversation.status == Status.NEW and not is_bot:
            conversation.status = Status.OPEN
            fields.append("status")
        if conversation.first_response_at is None and not private and not is_bot:
            conversation.first_response_at = now
            fields.append("first_response_at")
        if conversation.assignee_id is None and agent is not None and not is_bot:
            conversation.assignee = agent
            fields.append("assignee")
            event_record(conversation=conversation, kind="assigned", actor=agent, to=agent.username,
                         reason="replied while unassigned")
        conversation.save(update_fields=fields)
        event_record(conversation=conversation, kind="reply_queued", actor=agent, message_id=message.pk)

        from .tasks import message_send_task

        transaction.on_commit(lambda: message_send_task.delay(message.pk))
        _on_commit_push("message_sent", conversation.pk, message_id=message.pk)
    return message


def _outbound_reply(message: Message) -> OutboundReply:
    return OutboundReply(
        text=message.text, in_reply_to_external_id=message.in_reply_to_external_id,
        is_private=message.kind == Message.Kind.PRIVATE,
        recipient_external_id=message.conversation.identity.external_id, client_reference=str(message.pk),
    )


class SendRetry(Exception):
    """The send should be tried again after `countdown` seconds."""

    def __init__(self, reason: str, countdown: float):
        super().__init__(reason)
        self.reason, self.countdown = reason, countdown


def message_send(*, message_id: int) -> Message:
    """Posts a queued reply exactly once.

    The message is marked `sending` (committed) before the network call. If a
    worker dies or times out after that, the next attempt finds `sending` and
    asks the network whether the reply is there before posting again."""
    with transaction.atomic():
        message = Message.objects.select_for_update().select_related(
            "conversation__identity", "channel_account").get(pk=message_id)
        if message.send_status in (Message.SendStatus.SENT, Message.SendStatus.FAILED):
            return message  # done before: a redelivered task does nothing
        # Any earlier attempt may have reached the network: look before posting.
        outcome_unknown = message.send_status == Message.SendStatus.SENDING or message.send_attempts > 0
        message.send_status = Message.SendStatus.SENDING
        message.send_attempts += 1
        message.save(update_fields=["send_status", "send_attempts", "updated_at"])
    provider = get_provider(message.channel_account)
    reply = _outbound_reply(message)
    try:
        sent = provider.find_sent_reply(reply) if outcome_unknown else None
        if sent is None:
            sent = provider.send_reply(reply)
    except RateLimited as exc:
        _message_requeue(message, exc.reason)
        raise SendRetry(exc.reason, max(1.0, (exc.reset_at - timezone.now()).total_seconds())) from exc
    except UnknownOutcome as exc:
        # stays `sending`: the retry checks the network first
        raise SendRetry(exc.reason, 5) from exc
    except ProviderError as exc:
        # Revoked credentials fail the reply at once, with the reason shown; the
        # agent can retry after an admin reconnects the account.
        if exc.retryable and not isinstance(exc, AuthError):
            _message_requeue(message, exc.reason)
            raise SendRetry(exc.reason, min(5 * 2 ** message.send_attempts, 300)) from exc
        return message_send_failed(message_id=message.pk, reason=exc.reason)
    return message_mark_sent(message_id=message.pk, external_id=sent.external_id, url=sent.url)


def _message_requeue(message: Message, reason: str) -> None:
    Message.objects.filter(pk=message.pk, send_status=Message.SendStatus.SENDING).update(
        send_status=Message.SendStatus.QUEUED, failure_reason=reason)


@transaction.atomic
def message_mark_sent(*, message_id: int, external_id: str, url: str = "") -> Message:
    message = Message.objects.select_for_update().select_related("conversation").get(pk=message_id)
    message.send_status = Message.SendStatus.SENT
    message.external_id = external_id
    message.url = url or message.url
    message.failure_reason = ""
    message.save(update_fields=["send_status", "external_id", "url", "failure_reason", "updated_at"])
    event_record(conversation=message.conversation, kind="reply_sent", message_id=message.pk, external_id=external_id)
    _on_commit_push("message_status", message.conversation_id, message_id=message.pk, status="sent")
    return message


@transaction.atomic
def message_send_failed(*, message_id: int, reason: str) -> Message:
    message = Message.objects.select_for_update().select_related("conversation").get(pk=message_id)
    message.send_status = Message.SendStatus.FAILED
    message.failure_reason = reason
    message.save(update_fields=["send_status", "failure_reason", "updated_at"])
    event_record(conversation=message.conversation, kind="reply_failed", message_id=message.pk, reason=reason)
    _on_commit_push("message_status", message.conversation_id, message_id=message.pk, status="failed")
    return message


@transaction.atomic
def message_retry(*, message: Message, actor) -> Message:
    """An agent re-sends a failed reply (same row: still never two posts)."""
    message = Message.objects.select_for_update().get(pk=message.pk)
    if message.send_status != Message.SendStatus.FAILED:
        raise DomainError("Only a failed reply can be retried.")
    message.send_status = Message.SendStatus.QUEUED
    message.save(update_fields=["send_status", "updated_at"])
    event_record(conversation=message.conversation, kind="reply_retried", actor=actor, message_id=message.pk)
    from .tasks import message_send_task

    transaction.on_commit(lambda: message_send_task.delay(message.pk))
    return message


@transaction.atomic
def conversation_assign(*, conversation: Conversation, assignee, actor=None, reason: str = "") -> Conversation:
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    old = conversation.assignee
    if old == assignee:
        return conversation
    conversation.assignee = assignee
    if assignee is not None:
        conversation.last_assignee = assignee
    conversation.save(update_fields=["assignee", "last_assignee", "updated_at"])
    event_record(
        conversation=conversation, kind="assigned" if assignee else "unassigned", actor=actor,
        **{"from": old.username if old else None, "to": assignee.username if assignee else None, "reason": reason},
    )
    _on_commit_push("assigned", conversation.pk, assignee_id=assignee.pk if assignee else None)
    return conversation


ALLOWED_TRANSITIONS = {
    Status.NEW: {Status.OPEN, Status.PENDING, Status.RESOLVED, Status.CLOSED},
    Status.OPEN: {Status.PENDING, Status.RESOLVED, Status.CLOSED},
    Status.PENDING: {Status.OPEN, Status.RESOLVED, Status.CLOSED},
    Status.RESOLVED: {Status.OPEN, Status.CLOSED},
    Status.CLOSED: set(),
}


@transaction.atomic
def conversation_status_set(*, conversation: Conversation, status: str, actor=None, reason: str = "") -> Conversation:
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    old = conversation.status
    if status == old:
        return conversation
    if status not in ALLOWED_TRANSITIONS.get(old, set()):
        raise DomainError(f"A {old} conversation cannot become {status}.")
    now = timezone.now()
    conversation.status = status
    if status == Status.RESOLVED:
        conversation.resolved_at = now
    elif status == Status.OPEN and old == Status.RESOLVED:
        conversation.cycle_started_at = now
        conversation.first_response_at = None
        conversation.resolved_at = None
    conversation.save()
    event_record(conversation=conversation, kind="status_changed", actor=actor, old=old, new=status, reason=reason)
    _on_commit_push("status_changed", conversation.pk, status=status)
    return conversation


@transaction.atomic
def note_create(*, conversation: Conversation, author, text: str) -> Note:
    text = (text or "").strip()
    if not text:
        raise DomainError("The note is empty.")
    note = Note.objects.create(conversation=conversation, author=author, text=text)
    event_record(conversation=conversation, kind="note_added", actor=author, note_id=note.pk)
    _on_commit_push("note_added", conversation.pk, note_id=note.pk)
    return note
