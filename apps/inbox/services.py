"""Writes on conversations: replies, assignment, status, notes, tags, snooze, spam, read
marks. (Sending replies to the networks: sending.py; supervisors' moves: reassignment.py.)

Each service does the whole state change: rows, the audit event, the live push
and the tasks it fires, all after commit."""
from __future__ import annotations

import datetime as dt
import logging
import re
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.permissions import WORKING_ROLES
from apps.connectors.providers import get_provider
from apps.core.errors import Conflict, DomainError
from apps.core.task_queue import task_named

from .events import event_record
from .models import Conversation, Message, Note, Notification, PriorityBucket, ReadMark, Status, Tag
from .priority import bucket_for
from .realtime import inbox_push_on_commit, user_push
from .signals import SurveyOutcome, conversation_work_announce, survey_requested
from .tags import tag_names_parse

log = logging.getLogger(__name__)


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

        transaction.on_commit(lambda: _reply_queued(message, task_named("outbound.send_message")))
        inbox_push_on_commit("message_sent", conversation.pk, message_id=message.pk)
        conversation_work_announce(conversation.pk)  # first/next response met: SLA due times move on
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
    inbox_push_on_commit("assigned", conversation.pk, assignee_id=assignee.pk if assignee else None)
    conversation_work_announce(conversation.pk, freed_agent_id=old.pk if old else None)  # old agent has room again
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
    inbox_push_on_commit("status_changed", conversation.pk, status=status)
    conversation_work_announce(conversation.pk, freed_agent_id=conversation.assignee_id if status in (
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
    inbox_push_on_commit("note_added", conversation.pk, note_id=note.pk)
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
    inbox_push_on_commit("snoozed", conversation.pk, until=until.isoformat() if until else None)
    return conversation


@transaction.atomic
def conversation_tags_set(*, conversation: Conversation, tags, actor=None) -> Conversation:
    """Replaces the conversation's tags (a list or a comma-separated string). A name that
    breaks the tag rule (apps/inbox/tags.py) refuses the whole change with DomainError."""
    names = tag_names_parse(tags)
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    return _tags_apply(conversation, names, actor)


@transaction.atomic
def conversation_tags_change(*, conversation: Conversation, add=(), remove=(), actor=None) -> Conversation:
    """Adds and removes tags, leaving the others. The new set is worked out under
    the row lock, so two people tagging at once both keep their tags."""
    drop, adding = set(tag_names_parse(remove)), tag_names_parse(add)
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    # Routing may have stored a tag with capitals: a removal matches it case-insensitively.
    names = [n for n in conversation.tags.values_list("name", flat=True) if n.lower() not in drop]
    names += [n for n in adding if n not in drop and n not in {x.lower() for x in names}]
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
    inbox_push_on_commit("tags_changed", conversation.pk, tags=names)
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
    inbox_push_on_commit("priority_changed", conversation.pk, priority_bucket=int(bucket))
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
    inbox_push_on_commit("spam_changed", conversation.pk, is_spam=spam)
    # routing re-times its SLA: none while spam; unmarked, a target that fell due meanwhile is breached
    conversation_work_announce(conversation.pk)
    return conversation


# What the resolve form and the API's status action take (docs/reports.md, "Surveys").
SURVEY_CHOICES = ("none", "csat", "ces", "nps")
SURVEY_NAMES = {"csat": "satisfaction (CSAT)", "ces": "effort (CES)", "nps": "NPS"}


class Resolved(NamedTuple):
    conversation: Conversation
    note: str  # a line for the agent about the survey ("" when none was due)
    survey: SurveyOutcome | None  # what became of the survey; None when none was due


def conversation_resolve(*, conversation: Conversation, actor=None, survey: str | None = None,
                         send_survey: bool = False, reason: str = "") -> Resolved:
    """Resolve, and send a survey link to the customer by private message. `survey`: "csat",
    "ces" or "nps" (the agent's choice), "none"; None: the channel account's policy
    (`survey_auto`), or CSAT when the older `send_survey` flag is set. Resolving a conversation
    that was already resolved sends nothing (a second click, a client's retry). Reports sends the
    survey, and holds it back where the channel has no private messages or the customer had one
    within the channel's limit (`survey_cap_days`); the thread then says why."""
    if survey is None and send_survey:
        survey = "csat"
    if survey is not None and survey not in SURVEY_CHOICES:
        raise DomainError("Pick a survey: none, CSAT, CES or NPS.")
    with transaction.atomic():
        was = Conversation.objects.select_for_update().filter(pk=conversation.pk).values_list("status", flat=True)
        already = list(was) == [Status.RESOLVED]
        conversation = conversation_status_set(conversation=conversation, status=Status.RESOLVED, actor=actor,
                                               reason=reason)
        automatic = survey is None
        kind = conversation.channel_account.survey_auto if automatic else survey
        if kind not in SURVEY_NAMES:
            return Resolved(conversation, "", None)
        if already:
            return Resolved(conversation, "" if automatic else "Already resolved; no survey sent.", None)
        if not survey_requested.has_listeners():
            note = "" if automatic else "Resolved; surveys are not available in this installation."
            return Resolved(conversation, note, None)
        responses = survey_requested.send(sender=Conversation, conversation=conversation, actor=actor, kind=kind,
                                          automatic=automatic)  # reports sends it
    outcome = next((r for _, r in responses if isinstance(r, SurveyOutcome)), SurveyOutcome(kind, True))
    if not outcome.sent:  # never posted publicly, never over the limit: the thread says why
        return Resolved(conversation, f"Resolved; survey not sent: {outcome.reason}.", outcome)
    return Resolved(conversation, f"Resolved; the {SURVEY_NAMES[kind]} survey is on its way to the customer by "
                                  "private message.", outcome)


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
