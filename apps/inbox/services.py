"""Writes on conversations: replies, sending, assignment, status, notes.

Each service does the whole state change: rows, the audit event, the live push
and the tasks it fires, all after commit."""
from __future__ import annotations

import datetime as dt
import logging
import re

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import Presence, Role, Team, User
from apps.accounts.permissions import WORKING_ROLES, user_has_role
from apps.accounts.services import agent_availability_notify, audit_record, user_presence_set
from apps.connectors.providers import get_provider
from apps.connectors.providers.base import AuthError, OutboundReply, ProviderError, RateLimited, UnknownOutcome
from apps.core.errors import Conflict, DomainError

from .events import event_record
from .models import Conversation, Message, Note, Notification, PriorityBucket, Queue, ReadMark, Status, Tag
from .priority import bucket_for
from .realtime import inbox_push, user_push
from .selectors import OPEN_STATUSES, conversation_list_for_user, conversations_visible_to
from .signals import conversation_work_changed, survey_requested

log = logging.getLogger(__name__)


def _on_commit_push(kind: str, conversation_id: int, **data) -> None:
    transaction.on_commit(lambda: inbox_push(kind, conversation_id, **data))


def _routing_followup(conversation_id: int, freed_agent_id: int | None = None) -> None:
    """Routing (listening: apps/routing/receivers.py) updates SLA due times and gives a freed
    agent new work, after the commit."""
    conversation_work_changed.send(sender=Conversation, conversation_id=conversation_id,
                                   freed_agent_id=freed_agent_id)


def reply_create(
    *, conversation: Conversation, agent, text: str, private: bool = False,
    draft_started_at: dt.datetime | None = None, is_bot: bool = False, client_token: str | None = None,
) -> Message:
    """Stores the reply as `queued` and hands it to the outbound task.

    One submit, one reply: the composer's `client_token` (made when the form
    rendered) stores one reply however often the form is sent, and the same
    text from the same agent again within REPLY_DUPLICATE_WINDOW_SECONDS (a
    double click, a client's blind retry) is that reply, returned, not a second post.

    Refused when the thread moved on after the draft began: a newer customer
    message, or another agent's reply. `is_bot` marks automatic messages
    (auto-replies, survey links): sent the same way, but they are not a human
    response, so they leave status, first response and assignment alone."""
    text = (text or "").strip()
    if not text:
        raise DomainError("The reply is empty.")
    provider_cls = get_provider(conversation.channel_account).__class__
    if private and not provider_cls.supports_private_replies:
        raise DomainError("This network does not take direct messages.")
    limit = provider_cls.reply_limit(private=private)
    if len(text) > limit:
        raise DomainError(
            f"The {'direct message' if private else 'reply'} is {len(text)} characters; "
            f"{conversation.channel_account.get_provider_display()} allows {limit}."
        )
    if conversation.status == Status.CLOSED:
        raise DomainError("This conversation is closed.")
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        # Under the conversation's lock: a second submit waits for the first, then finds it.
        earlier = _reply_same_submit(conversation=conversation, agent=agent, text=text, private=private,
                                     is_bot=is_bot, client_token=client_token)
        if earlier is not None:
            return earlier
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
            client_token=client_token or None,
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

        transaction.on_commit(lambda: _reply_queued(message, message_send_task))
        _on_commit_push("message_sent", conversation.pk, message_id=message.pk)
        _routing_followup(conversation.pk)  # first/next response met: SLA due times move on
    return message


def _reply_queued(message: Message, send_task) -> None:
    """After the reply committed: its log line, then its send task, which carries this
    request's id (cxinbox/celery.py), so the line of the send names the agent's request too."""
    log.info("reply %s queued on conversation %s", message.pk, message.conversation_id, extra={
        "conversation": message.conversation_id, "reply": message.pk, "in_reply_to": message.in_reply_to_external_id,
        "agent": message.author_user_id, "bot": message.is_bot})
    send_task.delay(message.pk)


def _reply_same_submit(*, conversation, agent, text, private, is_bot, client_token) -> Message | None:
    """The reply this submit already stored, if any (see reply_create)."""
    mine = conversation.messages.filter(direction=Message.Direction.OUTBOUND, author_user=agent)
    if client_token:
        earlier = mine.filter(client_token=client_token).first()
        if earlier is not None:
            return earlier
    window = getattr(settings, "REPLY_DUPLICATE_WINDOW_SECONDS", 10)
    if agent is None or is_bot or not window:
        return None
    # a failed one is not it: sending the text again is how an agent tries once more
    return mine.exclude(send_status=Message.SendStatus.FAILED).filter(
        is_bot=False, text=text, kind=Message.Kind.PRIVATE if private else Message.Kind.PUBLIC,
        sent_at__gte=timezone.now() - dt.timedelta(seconds=window),
    ).order_by("-id").first()


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
    from .tasks import message_send_task

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
            transaction.on_commit(lambda pk=pk: message_send_task.delay(pk))
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
    _on_commit_push("message_status", message.conversation_id, message_id=message.pk, status="sent")
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
    _on_commit_push("message_status", message.conversation_id, message_id=message.pk, status="failed")
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
    _routing_followup(conversation.pk, freed_agent_id=old.pk if old else None)  # old agent has room again
    _notify(user=assignee, conversation=conversation, kind=Notification.Kind.ASSIGNED, actor=actor)
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
    _routing_followup(conversation.pk, freed_agent_id=conversation.assignee_id if status in (
        Status.RESOLVED, Status.CLOSED) else None)
    return conversation


@transaction.atomic
def note_create(*, conversation: Conversation, author, text: str) -> Note:
    text = (text or "").strip()
    if not text:
        raise DomainError("The note is empty.")
    note = Note.objects.create(conversation=conversation, author=author, text=text)
    mentioned = note_mentions_parse(text)
    if mentioned:
        note.mentions.set(mentioned)
        for user in mentioned:
            _notify(user=user, conversation=conversation, kind=Notification.Kind.MENTIONED, actor=author, note=note)
    event_record(conversation=conversation, kind="note_added", actor=author, note_id=note.pk,
                 mentions=[u.username for u in mentioned])
    _on_commit_push("note_added", conversation.pk, note_id=note.pk)
    return note


# --- Inbox actions (issue 4): snooze, tags, priority, spam, read marks, notifications ---

MENTION_RE = re.compile(r"(?<![\w@])@([\w.+-]{1,150})")


def _notify(*, user, conversation: Conversation, kind: str, actor=None, note: Note | None = None) -> None:
    """A notification row plus a push to that user's own channel (the toast)."""
    if user is None or (actor is not None and user.pk == actor.pk):
        return
    notification = Notification.objects.create(user=user, conversation=conversation, kind=kind, actor=actor, note=note)
    data = {"conversation_id": conversation.pk, "notification_id": notification.pk,
            "actor": actor.display_name if actor else "", "handle": conversation.identity.handle if
            conversation.identity_id else ""}
    transaction.on_commit(lambda: user_push(user.pk, kind, **data))


def note_mentions_parse(text: str):
    """The working users named as @username in a note."""
    from django.contrib.auth import get_user_model

    # "@ann." at the end of a sentence still names ann
    names = {n for m in MENTION_RE.findall(text or "") for n in (m, m.rstrip("."))}
    if not names:
        return []
    match = Q()
    for name in names:
        match |= Q(username__iexact=name)
    return list(get_user_model().objects.filter(match, is_active=True, role__in=WORKING_ROLES).order_by("username"))


@transaction.atomic
def conversation_snooze(*, conversation: Conversation, until: dt.datetime | None, actor=None) -> Conversation:
    """Hides the conversation from the working views until `until` (None wakes it)."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if until is not None and until <= timezone.now():
        raise DomainError("Snooze until a time in the future.")
    if not conversation.is_open and until is not None:
        raise DomainError("Only open work can be snoozed.")
    old = conversation.snoozed_until
    conversation.snoozed_until = until
    conversation.save(update_fields=["snoozed_until", "updated_at"])
    event_record(conversation=conversation, kind="snoozed" if until else "unsnoozed", actor=actor,
                 until=until.isoformat() if until else None, previous=old.isoformat() if old else None)
    _on_commit_push("snoozed", conversation.pk, until=until.isoformat() if until else None)
    return conversation


def _tag_names(tags) -> list[str]:
    if isinstance(tags, str):
        tags = tags.split(",")
    names = []
    for raw in tags or []:
        name = " ".join(str(raw).split()).lower()[:64]
        if name and name not in names:
            names.append(name)
    return names


@transaction.atomic
def conversation_tags_set(*, conversation: Conversation, tags, actor=None) -> Conversation:
    """Replaces the conversation's tags (a list or a comma-separated string)."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    return _tags_apply(conversation, _tag_names(tags), actor)


@transaction.atomic
def conversation_tags_change(*, conversation: Conversation, add=(), remove=(), actor=None) -> Conversation:
    """Adds and removes tags, leaving the others. The new set is worked out under
    the row lock, so two people tagging at once both keep their tags."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    drop = set(_tag_names(remove))
    # Routing may have stored a tag with capitals: a removal matches it case-insensitively.
    names = [n for n in conversation.tags.values_list("name", flat=True) if n.lower() not in drop]
    names += [n for n in _tag_names(add) if n not in drop and n not in {x.lower() for x in names}]
    return _tags_apply(conversation, names, actor)


def _tags_apply(conversation: Conversation, names: list[str], actor) -> Conversation:
    before = set(conversation.tags.values_list("name", flat=True))
    if before == set(names):
        return conversation
    for name in names:
        Tag.objects.get_or_create(name=name)
    conversation.tags.set(Tag.objects.filter(name__in=names))
    conversation.save(update_fields=["updated_at"])
    event_record(conversation=conversation, kind="tags_changed", actor=actor,
                 added=sorted(set(names) - before), removed=sorted(before - set(names)))
    _on_commit_push("tags_changed", conversation.pk, tags=names)
    return conversation


@transaction.atomic
def conversation_priority_set(*, conversation: Conversation, bucket: int | None = None, score: int | None = None,
                              actor=None, reason: str = "") -> Conversation:
    """A person sets the priority by hand: a bucket (urgent/high/normal/low), or a
    score 0-100, which also sets the bucket that score falls in. Routing keeps a
    hand-set bucket when it re-scores (apps/routing/sla.py: priority_apply)."""
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 100:
            raise DomainError("The priority score is a whole number from 0 to 100.")
        if bucket is None:
            bucket = bucket_for(score)
    try:
        bucket = PriorityBucket(int(bucket))
    except (TypeError, ValueError):
        raise DomainError("Pick a priority: urgent, high, normal or low.") from None
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    old, old_score = conversation.priority_bucket, conversation.priority
    if old == bucket and score in (None, old_score):
        return conversation
    conversation.priority_bucket = bucket
    fields = ["priority_bucket", "updated_at"]
    extra = {}
    if score is not None and score != old_score:
        conversation.priority = score
        fields.append("priority")
        extra = {"old_score": old_score, "score": score}
    conversation.save(update_fields=fields)
    event_record(conversation=conversation, kind="priority_changed", actor=actor, old=PriorityBucket(old).label,
                 new=bucket.label, manual=True, reason=reason, **extra)
    _on_commit_push("priority_changed", conversation.pk, priority_bucket=int(bucket))
    return conversation


@transaction.atomic
def conversation_mark_spam(*, conversation: Conversation, actor=None, spam: bool = True) -> Conversation:
    """Spam leaves every working view (and can be taken back); its status is kept."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if conversation.is_spam == spam:
        return conversation
    conversation.is_spam = spam
    conversation.save(update_fields=["is_spam", "updated_at"])
    event_record(conversation=conversation, kind="marked_spam" if spam else "unmarked_spam", actor=actor)
    _on_commit_push("spam_changed", conversation.pk, is_spam=spam)
    return conversation


def conversation_resolve(*, conversation: Conversation, actor=None, send_survey: bool = False,
                         reason: str = "") -> tuple[Conversation, str]:
    """Resolve, and optionally send the CSAT survey link through the channel.
    Returns the conversation and a line for the agent about the survey."""
    with transaction.atomic():
        conversation = conversation_status_set(conversation=conversation, status=Status.RESOLVED, actor=actor,
                                               reason=reason)
        if not send_survey:
            return conversation, ""
        if not survey_requested.has_listeners():
            return conversation, "Resolved; surveys are not available in this installation."
        survey_requested.send(sender=Conversation, conversation=conversation, actor=actor)  # reports sends it
    return conversation, "Resolved; the satisfaction survey is on its way to the customer."


def conversation_mark_read(*, conversation: Conversation, user) -> None:
    """The user has seen the thread up to now. No audit event: reading changes
    nothing on the conversation, and a row per page view would drown the trail."""
    if not getattr(user, "is_authenticated", False):
        return
    now = timezone.now()
    updated = ReadMark.objects.filter(user=user, conversation=conversation).update(read_at=now)
    if not updated:
        try:
            with transaction.atomic():
                ReadMark.objects.create(user=user, conversation=conversation, read_at=now)
        except IntegrityError:  # another tab created it at the same moment
            ReadMark.objects.filter(user=user, conversation=conversation).update(read_at=now)
    Notification.objects.filter(user=user, conversation=conversation, read_at__isnull=True).update(read_at=now)


def notifications_mark_read(*, user, ids=None) -> int:
    qs = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs.update(read_at=timezone.now())


# --- reassignment: single moves, bulk, and an agent's whole workload (issue 5) -------------------------

BULK_ASSIGN_MAX = 5000  # past this, narrow the filter
BULK_SYNC_MAX = 200  # pages and the API move more than this in the background (a Celery task)


def _work_changed(conversation_id: int, freed_agent) -> None:
    """After commit, routing re-times SLAs, offers the moved conversation to its new
    queue's agents and gives the freed agent new work; without routing installed, the
    freed agent's availability is still announced."""
    if conversation_work_changed.has_listeners():
        _routing_followup(conversation_id, freed_agent.pk if freed_agent else None)
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
    _on_commit_push("conversation_updated", conversation.pk, queue_id=queue.pk)
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
    queue = to_queue if to_queue is not None else (_queue_for_team(to_team) if to_team is not None else None)
    skipped = (asked - len(targets)) if asked is not None else 0
    if background_over is not None and len(targets) > background_over:
        # Many rows (about 10 ms each): a task moves them in chunks, each move audited as usual.
        from .tasks import bulk_assign_task

        payload = {"ids": targets, "actor_id": actor.pk, "reason": reason,
                   "to_agent_id": getattr(to_agent, "pk", None), "to_queue_id": getattr(queue, "pk", None)}
        audit_record(actor=actor, action="conversations.bulk_queued", target=str(to_agent or queue),
                     data={"matched": len(targets), "reason": reason})
        transaction.on_commit(lambda: bulk_assign_task.delay(**payload))
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
