"""Sending replies to the networks: a queued reply is posted by the outbound task through its
channel's provider (marked `sending` first, so a retry after an unknown outcome asks the
network before posting again), then `sent` or `failed` with the reason the agent sees;
429s wait for the reset, the sweep re-queues a reply whose task was lost (docs/inbox.md)."""
from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.connectors.providers import get_provider, provider_class
from apps.connectors.providers.base import AuthError, OutboundReply, ProviderError, RateLimited, UnknownOutcome
from apps.core.errors import DomainError
from apps.core.task_queue import task_named

from .events import event_record
from .models import Message
from .realtime import inbox_push_on_commit

log = logging.getLogger(__name__)


def _outbound_reply(message: Message) -> OutboundReply:
    parent_raw = {}
    if message.in_reply_to_external_id:
        parent_raw = (Message.objects.filter(channel_account_id=message.channel_account_id,
                                             external_id=message.in_reply_to_external_id)
                      .values_list("raw", flat=True).first()) or {}
    return OutboundReply(
        text=message.text, in_reply_to_external_id=message.in_reply_to_external_id,
        is_private=message.kind == Message.Kind.PRIVATE,
        recipient_external_id=message.conversation.identity.external_id, client_reference=str(message.pk),
        parent_raw=parent_raw,
    )


def private_messages_missing(channel_account) -> str:
    """Why this channel cannot take a private message ("Reddit has no private messages"), or ""
    when it can (X direct messages, Mastodon "direct" posts, email, the demo network...). What
    must never be posted publicly (a survey link) is not sent where this is not empty."""
    if provider_class(channel_account.provider).supports_private_replies:
        return ""
    return f"{channel_account.get_provider_display()} has no private messages"


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
        # `sending` with no reason recorded: an attempt started at updated_at and has
        # not ended. It may still be talking to the network (a redelivered or
        # duplicated task): checking now would not see its post yet. Wait until it
        # must be over (each network call is bounded by the provider timeout).
        if message.send_status == Message.SendStatus.SENDING and not message.failure_reason:
            lease_left = (message.updated_at + dt.timedelta(seconds=send_lease_seconds()) - timezone.now())
            if lease_left.total_seconds() > 0:
                raise SendRetry("An earlier attempt may still be sending this reply.",
                                lease_left.total_seconds() + 1)
        # Any earlier attempt may have reached the network: look before posting.
        outcome_unknown = message.send_status == Message.SendStatus.SENDING or message.send_attempts > 0
        message.send_status = Message.SendStatus.SENDING
        message.send_attempts += 1
        message.failure_reason = ""
        message.next_attempt_at = None
        message.save(update_fields=["send_status", "send_attempts", "failure_reason", "next_attempt_at",
                                    "updated_at"])
    provider = get_provider(message.channel_account)
    reply = _outbound_reply(message)
    try:
        sent = provider.find_sent_reply(reply) if outcome_unknown else None
        if sent is None:
            sent = provider.send_reply(reply)
    except RateLimited as exc:
        # Not lost: it may go at the reset (shown in the thread; the sweep waits for it too).
        countdown = max(1.0, (exc.reset_at - timezone.now()).total_seconds())
        _message_requeue(message, exc.reason, countdown)
        raise SendRetry(exc.reason, countdown) from exc
    except UnknownOutcome as exc:
        # stays `sending`, with the reason marking this attempt as over: the retry
        # checks the network first. (update(): updated_at keeps the attempt's start)
        Message.objects.filter(pk=message.pk, send_status=Message.SendStatus.SENDING).update(
            failure_reason=exc.reason, next_attempt_at=timezone.now() + dt.timedelta(seconds=5))
        raise SendRetry(exc.reason, 5) from exc
    except ProviderError as exc:
        # Revoked credentials fail the reply at once, with the reason shown; the
        # agent can retry after an admin reconnects the account.
        if exc.retryable and not isinstance(exc, AuthError):
            countdown = min(5 * 2 ** message.send_attempts, 300)
            _message_requeue(message, exc.reason, countdown)
            raise SendRetry(exc.reason, countdown) from exc
        return message_send_failed(message_id=message.pk, reason=exc.reason)
    message = message_mark_sent(message_id=message.pk, external_id=sent.external_id, url=sent.url)
    log.info("reply %s sent on conversation %s", message.pk, message.conversation_id, extra={
        "conversation": message.conversation_id, "reply": message.pk, "in_reply_to": message.in_reply_to_external_id,
        "network_id": message.external_id})
    return message


def send_lease_seconds() -> float:
    """How long one send attempt can last: a look-up and a post, each bounded by
    the provider timeout, plus a margin."""
    return 2 * settings.PROVIDER_TIMEOUT_SECONDS + 5


def _message_requeue(message: Message, reason: str, countdown: float) -> None:
    Message.objects.filter(pk=message.pk, send_status=Message.SendStatus.SENDING).update(
        send_status=Message.SendStatus.QUEUED, failure_reason=reason,
        next_attempt_at=timezone.now() + dt.timedelta(seconds=countdown))


def messages_send_sweep(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Queues again the replies left `queued`/`sending` past their due time by
    REPLY_SWEEP_AFTER_SECONDS: their send task was lost (Redis restarted without
    its data). message_send keeps it one post: a reply another attempt may still
    be sending waits out its lease, and one whose outcome is unknown is looked
    up on the network first. A reply waiting for a 429's reset is not due."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.REPLY_SWEEP_AFTER_SECONDS)
    with transaction.atomic():
        due = list(
            Message.objects.filter(send_status__in=[Message.SendStatus.QUEUED, Message.SendStatus.SENDING])
            .filter(Q(next_attempt_at__isnull=True, updated_at__lt=cutoff) | Q(next_attempt_at__lt=cutoff))
            .order_by("updated_at").select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit]
        )
        if not due:
            return 0
        # Due again only a sweep period after this one: a slow queue is not flooded.
        Message.objects.filter(pk__in=due).update(next_attempt_at=now)
        for pk in due:
            transaction.on_commit(lambda pk=pk: task_named("outbound.send_message").delay(pk))
    log.warning("reply sweep: queued %d stuck replies again: %s", len(due), due[:20])
    return len(due)


@transaction.atomic
def message_mark_sent(*, message_id: int, external_id: str, url: str = "") -> Message:
    message = Message.objects.select_for_update().select_related("conversation").get(pk=message_id)
    message.send_status = Message.SendStatus.SENT
    message.external_id = external_id
    message.url = url or message.url
    message.failure_reason = ""
    message.save(update_fields=["send_status", "external_id", "url", "failure_reason", "updated_at"])
    event_record(conversation=message.conversation, kind="reply_sent", message_id=message.pk, external_id=external_id)
    inbox_push_on_commit("message_status", message.conversation_id, message_id=message.pk, status="sent")
    return message


@transaction.atomic
def message_send_failed(*, message_id: int, reason: str) -> Message:
    message = Message.objects.select_for_update().select_related("conversation").get(pk=message_id)
    message.send_status = Message.SendStatus.FAILED
    message.failure_reason = reason
    message.save(update_fields=["send_status", "failure_reason", "updated_at"])
    event_record(conversation=message.conversation, kind="reply_failed", message_id=message.pk, reason=reason)
    log.warning("reply %s on conversation %s failed: %s", message.pk, message.conversation_id, reason,
                extra={"conversation": message.conversation_id, "reply": message.pk})
    inbox_push_on_commit("message_status", message.conversation_id, message_id=message.pk, status="failed")
    return message


@transaction.atomic
def message_retry(*, message: Message, actor) -> Message:
    """An agent re-sends a failed reply (same row: still never two posts)."""
    message = Message.objects.select_for_update().get(pk=message.pk)
    if message.send_status != Message.SendStatus.FAILED:
        raise DomainError("Only a failed reply can be retried.")
    message.send_status = Message.SendStatus.QUEUED
    message.next_attempt_at = None
    message.save(update_fields=["send_status", "next_attempt_at", "updated_at"])
    event_record(conversation=message.conversation, kind="reply_retried", actor=actor, message_id=message.pk)
    transaction.on_commit(lambda: task_named("outbound.send_message").delay(message.pk))
    return message
