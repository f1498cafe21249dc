"""Ingest: normalized mentions -> customers, identities, messages, conversations.

Idempotent: a message is unique on (channel_account, external_id), so a mention
fetched twice, or delivered by poll and push at once, is stored once. The poll
cursor advances only after the rows are committed: a crash re-fetches and the
unique key drops the duplicates."""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import re
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.contacts.models import Customer, SocialIdentity
from apps.inbox.events import event_record
from apps.inbox.models import Conversation, Message, Status
from apps.inbox.realtime import inbox_push

from .models import ChannelAccount
from .providers import get_provider
from .providers.base import AuthError, InboundMention, ProviderError, RateLimited

log = logging.getLogger(__name__)
OPEN_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING)


@dataclass
class IngestResult:
    created_message_ids: list[int] = field(default_factory=list)
    duplicates: int = 0
    # conversation id -> the new message ids in it (routing works per conversation)
    conversations: dict[int, list[int]] = field(default_factory=dict)


def identity_upsert(*, provider: str, mention: InboundMention) -> SocialIdentity:
    identity = SocialIdentity.objects.filter(provider=provider, external_id=mention.author_external_id).first()
    if identity is None:
        try:
            with transaction.atomic():
                customer = Customer.objects.create(name=mention.author_name or mention.author_handle)
                identity = SocialIdentity.objects.create(
                    customer=customer, provider=provider, external_id=mention.author_external_id,
                    handle=mention.author_handle, display_name=mention.author_name,
                    followers_count=mention.author_followers, profile_url=mention.author_profile_url,
                    avatar_url=mention.author_avatar_url, verified=mention.author_verified,
                )
                return identity
        except IntegrityError:  # created by a concurrent ingest
            identity = SocialIdentity.objects.get(provider=provider, external_id=mention.author_external_id)
    changed = {
        "handle": mention.author_handle, "display_name": mention.author_name or identity.display_name,
        "followers_count": mention.author_followers or identity.followers_count,
        "avatar_url": mention.author_avatar_url or identity.avatar_url,
    }
    if any(getattr(identity, k) != v for k, v in changed.items()):
        for k, v in changed.items():
            setattr(identity, k, v)
        identity.save(update_fields=[*changed, "updated_at"])
    return identity


def _thread_conversation(*, account: ChannelAccount, identity: SocialIdentity, mention: InboundMention):
    """The conversation a mention belongs to: reply chain, platform thread, else
    the customer's open conversation on this account. None: start a new one."""
    if mention.in_reply_to_external_id:
        parent = (
            Message.objects.filter(channel_account=account, external_id=mention.in_reply_to_external_id)
            .select_related("conversation")
            .first()
        )
        if parent and parent.conversation.status != Status.CLOSED:
            return parent.conversation
    if mention.thread_id:
        conv = (
            Conversation.objects.filter(channel_account=account, external_thread_id=mention.thread_id, identity=identity)
            .exclude(status=Status.CLOSED)
            .order_by("-id")
            .first()
        )
        if conv:
            return conv
    return (
        Conversation.objects.filter(channel_account=account, identity=identity, status__in=OPEN_STATUSES)
        .order_by("-id")
        .first()
    )


def _conversation_reopen(conversation: Conversation, at: dt.datetime) -> None:
    conversation.status = Status.OPEN
    conversation.cycle_started_at = at
    conversation.first_response_at = None
    conversation.resolved_at = None
    conversation.sla_breached = False
    # back to the last agent if routing finds them online, else to the queue
    conversation.last_assignee = conversation.assignee or conversation.last_assignee
    conversation.assignee = None
    event_record(conversation=conversation, kind="reopened", reason="new customer message")


def mention_store(*, account: ChannelAccount, mention: InboundMention, result: IngestResult) -> Message | None:
    """One mention, in its own savepoint: a duplicate rolls back only itself."""
    try:
        with transaction.atomic():
            identity = identity_upsert(provider=account.provider, mention=mention)
            # Serialises threading per author: two workers can't open two conversations.
            SocialIdentity.objects.select_for_update().filter(pk=identity.pk).first()
            conversation = _thread_conversation(account=account, identity=identity, mention=mention)
            now = timezone.now()
            if conversation is None:
                conversation = Conversation.objects.create(
                    channel_account=account, customer=identity.customer, identity=identity,
                    external_thread_id=mention.thread_id or mention.external_id, is_public=not mention.is_private,
                    status=Status.NEW, cycle_started_at=mention.created_at, subject=mention.text[:300],
                )
                event_record(conversation=conversation, kind="created", channel=account.provider)
            elif conversation.status == Status.RESOLVED:
                _conversation_reopen(conversation, mention.created_at)
            elif conversation.status == Status.PENDING:
                conversation.status = Status.OPEN  # the customer answered
                event_record(conversation=conversation, kind="status_changed", old="pending", new="open",
                             reason="customer replied")
            message = Message.objects.create(
                conversation=conversation, channel_account=account, direction=Message.Direction.INBOUND,
                kind=Message.Kind.PRIVATE if mention.is_private else Message.Kind.PUBLIC,
                external_id=mention.external_id, in_reply_to_external_id=mention.in_reply_to_external_id,
                author_identity=identity, text=mention.text, url=mention.url, raw=mention.raw,
                sent_at=mention.created_at, send_status=Message.SendStatus.RECEIVED,
            )
            if mention.quoted_text:
                message.raw = {**message.raw, "quoted_text": mention.quoted_text}
                message.save(update_fields=["raw"])
            conversation.last_message_at = max(filter(None, [conversation.last_message_at, mention.created_at]))
            conversation.last_inbound_at = max(filter(None, [conversation.last_inbound_at, mention.created_at]))
            conversation.updated_at = now
            conversation.save()
    except IntegrityError:
        result.duplicates += 1
        return None
    result.created_message_ids.append(message.pk)
    result.conversations.setdefault(conversation.pk, []).append(message.pk)
    return message


# NUL and lone UTF-16 surrogates (broken text from a network) cannot be stored by
# PostgreSQL or SQLite: one such mention used to fail its whole batch on every poll.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(value):
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def _fit_id(value: str, limit: int) -> str:
    # Too long for its column: cut, plus a hash of the whole, so it stays unique and idempotent.
    if len(value) <= limit:
        return value
    return value[: limit - 41] + "~" + hashlib.sha256(value.encode()).hexdigest()[:40]


def _url_or_blank(url: str) -> str:
    return url if len(url) <= 500 else ""  # a cut URL is a wrong URL


def _mention_fit(m: InboundMention) -> InboundMention:
    """What a network sent, made storable: text kept as sent except characters no
    database holds (shown as U+FFFD); ids and names cut to their columns."""
    m = InboundMention(**{**_storable(dataclasses.asdict(m)), "created_at": m.created_at})
    return dataclasses.replace(
        m, external_id=_fit_id(m.external_id, 255), thread_id=_fit_id(m.thread_id, 255),
        in_reply_to_external_id=_fit_id(m.in_reply_to_external_id, 255),
        author_external_id=_fit_id(m.author_external_id, 128), author_handle=m.author_handle[:200],
        author_name=m.author_name[:200], author_followers=max(0, min(int(m.author_followers or 0), 2**31 - 1)),
        url=_url_or_blank(m.url), author_avatar_url=_url_or_blank(m.author_avatar_url),
        author_profile_url=_url_or_blank(m.author_profile_url),
    )


def mentions_ingest(*, account: ChannelAccount, mentions: list[InboundMention]) -> IngestResult:
    """Stores a batch. Routing and the live push fire only after the commit."""
    result = IngestResult()
    mentions = [_mention_fit(m) for m in mentions]
    ids = [m.external_id for m in mentions]
    known = set(
        Message.objects.filter(channel_account=account, external_id__in=ids).values_list("external_id", flat=True)
    )
    seen: set[str] = set()
    with transaction.atomic():
        # oldest first, so a reply threads onto a parent from the same batch
        for mention in sorted(mentions, key=lambda m: (m.created_at, m.external_id)):
            if mention.external_id in known or mention.external_id in seen:
                result.duplicates += 1
                continue
            seen.add(mention.external_id)
            mention_store(account=account, mention=mention, result=result)
        if result.conversations:
            transaction.on_commit(lambda: _after_ingest(result))
    return result


def _after_ingest(result: IngestResult) -> None:
    from apps.routing.tasks import conversation_route_task

    for conversation_id, message_ids in result.conversations.items():
        conversation_route_task.delay(conversation_id, message_ids)
        inbox_push("message_received", conversation_id)


# --- polling --------------------------------------------------------------------
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600


def account_poll(*, account: ChannelAccount) -> IngestResult:
    """Fetch, store, then advance the cursor. Provider errors are recorded on
    the account (the connector-health view shows them) with a backoff."""
    now = timezone.now()
    provider = get_provider(account)
    try:
        poll = provider.fetch_mentions(dict(account.poll_cursor or {}))
    except ProviderError as exc:
        account_poll_failed(account=account, error=exc)
        raise
    result = mentions_ingest(account=account, mentions=poll.mentions)
    # Only now, after the rows committed, does the cursor move.
    ChannelAccount.objects.filter(pk=account.pk).update(
        poll_cursor=poll.cursor, last_polled_at=now, last_success_at=now, last_error="",
        consecutive_errors=0, rate_limited_until=None,
        next_poll_at=None if poll.complete else now,
    )
    account.poll_cursor = poll.cursor
    return result


def account_poll_failed(*, account: ChannelAccount, error: ProviderError) -> None:
    now = timezone.now()
    errors = account.consecutive_errors + 1
    if isinstance(error, RateLimited):
        next_poll, limited = error.reset_at, error.reset_at
    else:
        delay = min(BACKOFF_BASE_SECONDS * 2 ** (errors - 1), BACKOFF_MAX_SECONDS)
        if isinstance(error, AuthError):
            delay = max(delay, 300)  # revoked tokens rarely come back within seconds
        next_poll, limited = now + dt.timedelta(seconds=delay), None
    ChannelAccount.objects.filter(pk=account.pk).update(
        last_polled_at=now, last_error=error.reason[:2000], consecutive_errors=errors,
        next_poll_at=next_poll, rate_limited_until=limited,
    )
    log.warning("poll of account %s failed: %s", account.pk, error.reason)
