"""Ingest: normalized mentions -> customers, identities, messages, conversations.

Idempotent: a message is unique on (channel_account, external_id), so a mention
fetched twice, or delivered by poll and push at once, is stored once. The poll
cursor advances only after the rows are committed: a crash re-fetches and the
unique key drops the duplicates."""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import logging
import random
import time
from dataclasses import dataclass, field
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, close_old_connections, connection, transaction
from django.db.models import F, Func, IntegerField, Q
from django.utils import timezone

from apps.contacts.models import Customer, SocialIdentity
from apps.core.db import commit_without_flush_wait, rows_insert, rows_insert_values, rows_update
from apps.core.kv import kv_add, kv_delete
from apps.core.request_id import request_id_current
from apps.inbox.events import event_record, events_record_many
from apps.inbox.models import Conversation, Message, Status
from apps.inbox.realtime import inbox_push_many
from apps.insights.services import text_score
from apps.routing.services import MessageFacts, RoutingHints, messages_unrouted_add

from .models import ChannelAccount, PushDelivery
from .providers import get_provider
from .providers.base import (AuthError, InboundMention, PermanentError, ProviderError, RateLimited, mention_clean,
                             mention_from_dict, mention_to_dict)
from .push_writer import push_writer_get

log = logging.getLogger(__name__)
OPEN_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING)


class Origin(NamedTuple):
    """When a mention reached us (the webhook's accept, the poll's fetch; not its post time on
    the network) and the request id that brought it: kept on its routing marker, for the
    arrival -> routed histogram and the log lines that follow a mention."""
    received_at: dt.datetime
    request_id: str


@dataclass
class IngestResult:
    created_message_ids: list[int] = field(default_factory=list)
    duplicates: int = 0
    # conversation id -> the new message ids in it (routing works per conversation)
    conversations: dict[int, list[int]] = field(default_factory=dict)
    # external id -> (the message id it was stored as, the request id that brought it): the ingest log line
    stored: dict[str, tuple[int, str]] = field(default_factory=dict)
    # defer_held: the mentions not stored because another transaction holds their author or conversation
    deferred: list[InboundMention] = field(default_factory=list)
    # what the transaction holds of what it wrote, for routing right after its commit (PostgreSQL);
    # one transaction's (each pass routes its own part on commit): add() keeps the first
    routing_hints: RoutingHints | None = None

    def add(self, other: "IngestResult") -> None:
        self.created_message_ids += other.created_message_ids
        self.duplicates += other.duplicates
        self.routing_hints = self.routing_hints or other.routing_hints
        self.stored.update(other.stored)
        for conversation_id, message_ids in other.conversations.items():
            self.conversations.setdefault(conversation_id, []).extend(message_ids)


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
    _conversation_reopen_fields(conversation, at)
    event_record(conversation=conversation, kind="reopened", reason="new customer message")


def mention_store(*, account: ChannelAccount, mention: InboundMention, result: IngestResult,
                  score: tuple | None = None, origin: Origin | None = None) -> Message | None:
    """One mention, in its own savepoint: a duplicate rolls back only itself.
    `score`: insights.text_score of its text, if computed already."""
    language, sentiment, sentiment_label = score or text_score(mention.text)
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
                language=language, sentiment=sentiment, sentiment_label=sentiment_label,
            )
            origin = origin or Origin(now, request_id_current())
            messages_unrouted_add([message.pk], arrived_at=[origin.received_at], request_ids=[origin.request_id])
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
    result.stored[mention.external_id] = (message.pk, origin.request_id)
    return message


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
    m = mention_clean(m)  # the edge's rules (U+FFFD, text cap, http(s) URLs, sane time), for every path
    return dataclasses.replace(
        m, external_id=_fit_id(m.external_id, 255), thread_id=_fit_id(m.thread_id, 255),
        in_reply_to_external_id=_fit_id(m.in_reply_to_external_id, 255),
        author_external_id=_fit_id(m.author_external_id, 128), author_handle=m.author_handle[:200],
        author_name=m.author_name[:200],  # followers: clamped by mention_clean
        url=_url_or_blank(m.url), author_avatar_url=_url_or_blank(m.author_avatar_url),
        author_profile_url=_url_or_blank(m.author_profile_url),
    )


def mentions_ingest(*, account: ChannelAccount, mentions: list[InboundMention],
                    route_now: bool = False, defer_held: bool = False,
                    origins: list[Origin] | None = None) -> IngestResult:
    """Stores a batch in one transaction with set-based queries (a handful of
    statements per batch, not a dozen per mention). Routing and the live push
    fire only after the commit. defer_held: the mentions of authors another
    ingest holds, or of open conversations a router holds, are not waited for
    but returned in `deferred`, for the caller
    to store in a transaction of its own (push deliveries, which ingest inside
    theirs). `origins`, parallel to `mentions`: when and through which request each
    reached us (default: now, through the current request)."""
    result = IngestResult()
    mentions = [_mention_fit(m) for m in mentions]
    default_origin = Origin(timezone.now(), request_id_current())
    origin_of: dict[str, Origin] = {}
    for mention, origin in zip(mentions, origins or ()):
        origin_of.setdefault(mention.external_id, origin)  # sent twice: when it first reached us
    ordered, seen = [], set()
    # oldest first, so a reply threads onto a parent from the same batch
    for mention in sorted(mentions, key=lambda m: (m.created_at, m.external_id)):
        if mention.external_id in seen:
            result.duplicates += 1
            continue
        seen.add(mention.external_id)
        ordered.append(mention)
    known = _known_external_ids(account, [m.external_id for m in ordered])
    fresh = [m for m in ordered if m.external_id not in known]
    result.duplicates += len(ordered) - len(fresh)
    if not fresh:
        return result
    # language + sentiment before the transaction (no lock held meanwhile) and stored with the row:
    # routing then never rewrites a message (docs/performance-history.md item 20)
    scores = {m.external_id: text_score(m.text) for m in fresh}
    # Two passes when this is its own transaction: the first skips the authors another
    # ingest holds (their threading waits for its commit) and stores the rest at once; the
    # second, a transaction of its own holding nothing, waits for those authors. One batch
    # no longer waits whole on another that shares one author (docs/performance-history.md item 25).
    # Inside a caller's transaction one waiting pass, as locks taken in a first pass would be
    # held while the second waits; unless the caller takes the second pass (defer_held).
    inside = transaction.get_connection().in_atomic_block
    # Its own transactions hold at most PUSH_INGEST_MAX_MENTIONS mentions each (one advisory lock
    # per new author: a big poll in one ran short of PostgreSQL's shared lock memory); oldest
    # first, so a reply's parent is committed before it. A caller's transaction bounds itself.
    size = len(fresh) if inside else max(1, settings.PUSH_INGEST_MAX_MENTIONS)
    for start in range(0, len(fresh), size):
        pending, wait = fresh[start:start + size], inside and not defer_held
        while pending:
            part = IngestResult()
            with transaction.atomic():
                try:
                    with transaction.atomic():
                        deferred = _mentions_store(account=account, mentions=pending, result=part, scores=scores,
                                                   wait=wait, origins=origin_of, default_origin=default_origin)
                except IntegrityError:
                    # A row the batch path did not expect (a concurrent writer without the
                    # author lock): store one by one, each in its own savepoint.
                    log.warning("batch ingest on account %s hit a conflict; storing one by one", account.pk)
                    part, deferred = IngestResult(duplicates=part.duplicates), []
                    for mention in pending:
                        mention_store(account=account, mention=mention, result=part,
                                      score=scores.get(mention.external_id),
                                      origin=origin_of.get(mention.external_id, default_origin))
                if part.conversations:
                    transaction.on_commit(lambda part=part: _after_ingest(part, route_now=route_now,
                                                                          account_id=account.pk))
            result.add(part)
            if defer_held:
                result.deferred = deferred
                break
            pending, wait = deferred, True
    return result


def _known_external_ids(account: ChannelAccount, ids: list[str]) -> set[str]:
    return set(
        Message.objects.filter(channel_account=account, external_id__any=ids).values_list("external_id", flat=True)
    )


def identities_upsert(*, provider: str, mentions: list[InboundMention],
                      skip_locked: bool = False) -> dict[str, SocialIdentity]:
    """Customers and identities for a batch's authors, row-locked (in id order, so
    two workers never deadlock) for the rest of the transaction: the lock
    serialises threading per author, as mention_store's does. skip_locked: the
    authors another transaction holds are left out of the result (never waited for)."""
    latest: dict[str, InboundMention] = {}
    for m in mentions:  # oldest first: the newest profile data wins
        latest[m.author_external_id] = m
    keys = sorted(latest)

    def locked(wanted: list[str]) -> dict[str, SocialIdentity]:
        qs = (SocialIdentity.objects.select_for_update(skip_locked=skip_locked)
              .filter(provider=provider, external_id__any=wanted))
        return {i.external_id: i for i in qs.order_by("pk")}

    identities = locked(keys)
    missing = [k for k in keys if k not in identities]
    if missing and connection.vendor == "postgresql":
        # A new author is claimed before the INSERT (a transaction-scoped advisory lock on
        # provider + id, in key order), so a batch never waits inside the INSERT for another
        # that inserted the same author and has not committed: without waiting, what another
        # claims is left for a later pass like a held author; waiting, in key order.
        keyed = ("(SELECT k, hashtextextended('identity:' || %s || ':' || k, 0) AS h "
                 "FROM unnest(%s::text[]) WITH ORDINALITY AS t(k, n) ORDER BY n) AS s")
        with connection.cursor() as cursor:
            if skip_locked:
                # one statement: the authors not stored yet that this transaction claims; one that
                # exists (so another transaction holds its row) or another claims: a later pass
                cursor.execute(f"SELECT k FROM {keyed} WHERE NOT EXISTS (SELECT 1 FROM "
                               f"{SocialIdentity._meta.db_table} i WHERE i.provider = %s AND i.external_id = s.k) "
                               f"AND pg_try_advisory_xact_lock(h)", [provider, missing, provider])
                claimed = {row[0] for row in cursor.fetchall()}
                missing = [k for k in missing if k in claimed]
            else:
                cursor.execute(f"SELECT count(*) FROM (SELECT pg_advisory_xact_lock(h) FROM {keyed}) AS l",
                               [provider, missing])
    if missing:
        customers = rows_insert(
            [Customer(name=latest[k].author_name or latest[k].author_handle) for k in missing]
        )
        rows_insert([
            SocialIdentity(
                customer=c, provider=provider, external_id=k, handle=latest[k].author_handle,
                display_name=latest[k].author_name, followers_count=latest[k].author_followers,
                profile_url=latest[k].author_profile_url, avatar_url=latest[k].author_avatar_url,
                verified=latest[k].author_verified,
            ) for k, c in zip(missing, customers)
        ], ignore_conflicts=True)  # created meanwhile by a concurrent ingest: theirs stands
        # only the new ones: the others are locked and loaded already (as before, in id order)
        identities.update(locked(missing))
        used = {identities[k].customer_id for k in missing if k in identities}
        orphans = [c.pk for c in customers if c.pk not in used]
        if orphans:
            Customer.objects.filter(pk__in=orphans).delete()
    changed = []
    for key, identity in identities.items():
        m = latest[key]
        new = {"handle": m.author_handle, "display_name": m.author_name or identity.display_name,
               "followers_count": m.author_followers or identity.followers_count,
               "avatar_url": m.author_avatar_url or identity.avatar_url}
        if any(getattr(identity, k) != v for k, v in new.items()):
            for k, v in new.items():
                setattr(identity, k, v)
            identity.updated_at = timezone.now()
            changed.append(identity)
    if changed:
        rows_update(changed, ["handle", "display_name", "followers_count", "avatar_url", "updated_at"])
    return identities


def _mentions_store(*, account: ChannelAccount, mentions: list[InboundMention], result: IngestResult,
                    scores: dict[str, tuple], wait: bool = True, origins: dict[str, Origin] | None = None,
                    default_origin: Origin | None = None) -> list[InboundMention]:
    """Threads and stores a batch: the rules of _thread_conversation, evaluated in
    memory over what a few queries loaded, then bulk inserts and updates.
    `scores`: external id -> insights.text_score, stored with each message;
    `origins`: external id -> Origin, kept on its routing marker (else `default_origin`).
    wait=False: the mentions of authors another transaction holds, or of an open
    conversation a router holds, and replies to them in the batch, are not stored
    but returned, in order, for a later pass."""
    identities = identities_upsert(provider=account.provider, mentions=mentions, skip_locked=not wait)
    deferred: list[InboundMention] = []
    if len(identities) < len({m.author_external_id for m in mentions}):
        mentions = _held_set_aside(mentions, deferred, lambda m: m.author_external_id not in identities)
        if not mentions:
            return deferred
    # Under the authors' locks a concurrent ingest of the same mention has
    # committed (or waits for us): drop what it stored.
    known = _known_external_ids(account, [m.external_id for m in mentions])
    mentions = [m for m in mentions if m.external_id not in known]
    result.duplicates += len(known)
    if not mentions:
        return deferred
    identity_ids = {i.pk for i in identities.values()}
    batch_ids = {m.external_id for m in mentions}
    parent_ids = {m.in_reply_to_external_id for m in mentions if m.in_reply_to_external_id} - batch_ids
    parent_conv: dict[str, int] = dict(
        Message.objects.filter(channel_account=account, external_id__any=parent_ids)
        .values_list("external_id", "conversation_id")
    ) if parent_ids else {}
    thread_ids = {m.thread_id for m in mentions if m.thread_id}
    q = Q(identity_id__any=identity_ids, status__in=OPEN_STATUSES)
    if thread_ids:
        q |= Q(identity_id__any=identity_ids, external_thread_id__any=thread_ids)
    if parent_conv:
        q |= Q(pk__any=set(parent_conv.values()))
    # The conversations a mention may thread onto, row-locked before any is read for
    # threading: their status is then the one this transaction writes back. A router
    # holds its batch's conversations until it commits; without waiting, the mentions
    # of a conversation it holds are left for a later pass like a held author's, and
    # the rest of the batch goes on (docs/performance-history.md item 31).
    candidates = dict(Conversation.objects.filter(Q(channel_account=account) & q)
                      .values_list("pk", "identity_id"))
    convs = {c.pk: c for c in Conversation.objects.select_for_update(no_key=True, skip_locked=not wait)
             .filter(pk__any=list(candidates)).order_by("pk")} if candidates else {}
    if len(convs) < len(candidates):
        held = set(candidates) - set(convs)
        held_authors = {candidates[pk] for pk in held}
        mentions = _held_set_aside(mentions, deferred, lambda m: identities[m.author_external_id].pk in held_authors
                                   or parent_conv.get(m.in_reply_to_external_id) in held)
        if not mentions:
            return deferred
    by_thread: dict[tuple[int, str], Conversation] = {}
    open_for: dict[int, Conversation] = {}
    for c in convs.values():  # ascending id: the newest wins, as order_by("-id").first() does
        if c.status != Status.CLOSED:
            by_thread[(c.identity_id, c.external_thread_id)] = c
        if c.status in OPEN_STATUSES:
            open_for[c.identity_id] = c

    now = timezone.now()
    placed: dict[str, Conversation] = {}  # external id -> its conversation, for replies in the same batch
    new_convs: list[Conversation] = []
    touched: dict[int, Conversation] = {}
    reopened: dict[int, Conversation] = {}
    events: list[tuple[Conversation, str, dict]] = []
    rows: list[tuple[InboundMention, SocialIdentity, Conversation]] = []
    for m in mentions:
        identity = identities[m.author_external_id]
        conv = None
        if m.in_reply_to_external_id:
            parent = placed.get(m.in_reply_to_external_id) or convs.get(parent_conv.get(m.in_reply_to_external_id))
            if parent is not None and parent.status != Status.CLOSED:
                conv = parent
        if conv is None and m.thread_id:
            conv = by_thread.get((identity.pk, m.thread_id))
        if conv is None:
            conv = open_for.get(identity.pk)
        if conv is None:
            conv = Conversation(
                channel_account=account, customer_id=identity.customer_id, identity=identity,
                external_thread_id=m.thread_id or m.external_id, is_public=not m.is_private, status=Status.NEW,
                cycle_started_at=m.created_at, subject=m.text[:300], created_at=now, updated_at=now,
            )
            new_convs.append(conv)
            events.append((conv, "created", {"channel": account.provider}))
            by_thread[(identity.pk, conv.external_thread_id)] = conv
            open_for[identity.pk] = conv
        elif conv.status == Status.RESOLVED:
            _conversation_reopen_fields(conv, m.created_at)
            events.append((conv, "reopened", {"reason": "new customer message"}))
            reopened[conv.pk] = conv
            current = open_for.get(identity.pk)
            if current is None or (current.pk is not None and current.pk < conv.pk):
                open_for[identity.pk] = conv
        elif conv.status == Status.PENDING:
            conv.status = Status.OPEN  # the customer answered
            events.append((conv, "status_changed", {"old": "pending", "new": "open", "reason": "customer replied"}))
        conv.last_message_at = max(filter(None, [conv.last_message_at, m.created_at]))
        conv.last_inbound_at = max(filter(None, [conv.last_inbound_at, m.created_at]))
        conv.updated_at = now
        if conv.pk is not None:
            touched[conv.pk] = conv
        placed[m.external_id] = conv
        rows.append((m, identity, conv))

    # rows_insert, not bulk_create: Django's UNNEST arrays cost half of ingest's CPU (apps/core/db.py)
    rows_insert(new_convs)
    if touched:
        rows_update(touched.values(), ["status", "last_message_at", "last_inbound_at", "updated_at"])
    if reopened:
        rows_update(reopened.values(), [
            "cycle_started_at", "first_response_at", "resolved_at", "sla_breached", "last_assignee", "assignee"])
    # as dicts: building 100 Message instances cost more than sending them (rows_insert_values)
    message_ids = rows_insert_values(Message, [{
        "conversation_id": conv.pk, "channel_account_id": account.pk, "direction": Message.Direction.INBOUND,
        "kind": Message.Kind.PRIVATE if m.is_private else Message.Kind.PUBLIC,
        "external_id": m.external_id, "in_reply_to_external_id": m.in_reply_to_external_id,
        "author_identity_id": identity.pk, "text": m.text, "url": m.url,
        "raw": {**m.raw, "quoted_text": m.quoted_text} if m.quoted_text else m.raw,
        "sent_at": m.created_at, "send_status": Message.SendStatus.RECEIVED, "created_at": now, "updated_at": now,
        "language": scores[m.external_id][0], "sentiment": scores[m.external_id][1],
        "sentiment_label": scores[m.external_id][2],
    } for m, identity, conv in rows])
    default_origin = default_origin or Origin(now, request_id_current())
    arrived = ([origins.get(m.external_id, default_origin) for m, _, _ in rows] if origins
               else [default_origin] * len(rows))
    messages_unrouted_add(message_ids, arrived_at=[o.received_at for o in arrived],
                          request_ids=[o.request_id for o in arrived])
    events_record_many(events=events)
    for message_id, (m, _, conv), origin in zip(message_ids, rows, arrived):
        result.created_message_ids.append(message_id)
        result.conversations.setdefault(conv.pk, []).append(message_id)
        result.stored[m.external_id] = (message_id, origin.request_id)
    result.routing_hints = _routing_hints(rows, message_ids, identities, scores)
    return deferred


def _held_set_aside(mentions: list[InboundMention], deferred: list[InboundMention], held) -> list[InboundMention]:
    """Moves the mentions `held(mention)` says must wait, and the replies to them in the
    batch, onto `deferred` (kept oldest first, as ingest stores); returns the others."""
    later = {m.external_id for m in deferred}
    kept = []
    for m in mentions:  # oldest first: a reply to a deferred mention waits with it
        if held(m) or m.in_reply_to_external_id in later:
            later.add(m.external_id)
            deferred.append(m)
        else:
            kept.append(m)
    deferred.sort(key=lambda m: (m.created_at, m.external_id))
    return kept


def _routing_hints(rows, message_ids: list[int], identities: dict[str, SocialIdentity],
                   scores: dict[str, tuple]) -> RoutingHints | None:
    """The conversations just written, with their identity, and their customer messages'
    facts, tagged with the row version this transaction wrote (the `xmin` of one of
    them: all were written by the same (sub)transaction). Routing right after the
    commit then reads none of it back if no one wrote them since (RoutingHints)."""
    if connection.vendor != "postgresql" or not rows:
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT xmin::text FROM {Conversation._meta.db_table} WHERE id = %s", [rows[0][2].pk])
        hints = RoutingHints(xmin=cursor.fetchone()[0])
    by_pk = {identity.pk: identity for identity in identities.values()}
    for message_id, (m, _, conv) in zip(message_ids, rows):
        if conv.pk not in hints.conversations:
            identity = by_pk.get(conv.identity_id)
            if identity is None:  # a reply into another customer's conversation: routing reads that one
                continue
            conv.identity = identity
            hints.conversations[conv.pk] = conv
        language, sentiment, label = scores[m.external_id]
        sent_at = m.created_at  # as the column holds it: a naive time is taken in the default zone, as Django does
        if timezone.is_naive(sent_at):
            sent_at = timezone.make_aware(sent_at, timezone.get_default_timezone())
        hints.messages.setdefault(conv.pk, []).append(MessageFacts(
            pk=message_id, conversation_id=conv.pk, text=m.text, sent_at=sent_at, language=language,
            sentiment=sentiment, sentiment_label=label))
    return hints


def _conversation_reopen_fields(conversation: Conversation, at: dt.datetime) -> None:
    conversation.status = Status.OPEN
    conversation.cycle_started_at = at
    conversation.first_response_at = None
    conversation.resolved_at = None
    conversation.sla_breached = False
    # back to the last agent if routing finds them online, else to the queue
    conversation.last_assignee_id = conversation.assignee_id or conversation.last_assignee_id
    conversation.assignee = None


def _ingest_logged(result: IngestResult, account_id: int | None) -> None:
    """One line per committed ingest transaction (never one per mention: the hot path): for
    each request id that brought mentions, their network ids and the message id each was
    stored as (docs/operations.md, "Following a mention"). Before routing's line."""
    if not log.isEnabledFor(logging.INFO):
        return
    by_request: dict[str, dict[str, int]] = {}
    for network_id, (message_id, request_id) in result.stored.items():
        by_request.setdefault(request_id, {})[network_id] = message_id
    log.info("ingested %d mentions of account %s into %d conversations", len(result.stored), account_id,
             len(result.conversations), extra={"account": account_id, "mentions": by_request})


def _after_ingest(result: IngestResult, *, route_now: bool = False, account_id: int | None = None) -> None:
    """One routing task and one live push per batch, not one per conversation:
    the per-task and per-push overheads were most of the cost (docs/performance-history.md).
    route_now (every ingest task: pushes, polls, handed-over batches): routed here,
    in the task that stored them, saving a queue hop and a task (item 22); if that
    fails, queued as usual (and a worker killed in between leaves it to the
    unrouted sweep). Without it, routing is queued."""
    from apps.routing.services import conversations_route_later, conversations_route_now

    _ingest_logged(result, account_id)
    pairs = list(result.conversations.items())
    inbox_push_many("message_received", [cid for cid, _ in pairs])
    if route_now:
        try:
            conversations_route_now(pairs=pairs, hints=result.routing_hints)
            return
        except Exception:  # noqa: BLE001 - the task path below retries it
            log.warning("routing an ingested batch in place failed; queueing it", exc_info=True)
    conversations_route_later(pairs=pairs)


# --- polling --------------------------------------------------------------------
# A transient error (a timeout, a 5xx, a malformed page) is retried soon: 5 s doubling, at
# most 15 s (the beat's poll interval: a failing poll is never retried later than a healthy
# one would poll), jittered so accounts that failed together do not retry together. It was
# 30 s doubling to an hour: six in a row put the next poll 16 minutes out (issue 18). A cap of
# 60 s still made streaks: the longer the wait, the likelier the next poll meets the network's
# next bad moment (the 30-minute soak's poll p99 was 266 s with 60 s, under its bound with 15 s).
BACKOFF_BASE_SECONDS = 5
BACKOFF_MAX_SECONDS = 15
# Refused credentials (and a permanent refusal) rarely mend within seconds: 5 min doubling to an hour.
AUTH_BACKOFF_BASE_SECONDS = 300
AUTH_BACKOFF_MAX_SECONDS = 3600


def poll_backoff_seconds(*, error: ProviderError, errors: int, now: dt.datetime) -> float:
    """Seconds until the next poll after `errors` failures in a row, the last one `error`.
    A 429 waits for its reset. A transient error doubles from 5 s to at most 15 s, the
    upper half jittered (between half and all of the doubled delay); refused credentials
    double from 5 min to an hour, plus up to a tenth."""
    if isinstance(error, RateLimited) and error.reset_at and error.reset_at > now:
        return (error.reset_at - now).total_seconds()
    doublings = min(max(errors, 1) - 1, 20)
    if isinstance(error, (AuthError, PermanentError)):
        delay = min(AUTH_BACKOFF_BASE_SECONDS * 2 ** doublings, AUTH_BACKOFF_MAX_SECONDS)
        return delay + random.uniform(0, delay / 10)
    delay = min(BACKOFF_BASE_SECONDS * 2 ** doublings, BACKOFF_MAX_SECONDS)
    return delay / 2 + random.uniform(0, delay / 2)


def account_poll(*, account: ChannelAccount) -> IngestResult:
    """Fetch, store, then advance the cursor. Provider errors are recorded on
    the account (the connector-health view shows them) with a backoff."""
    now = timezone.now()
    provider = get_provider(account)
    started_from = dict(account.poll_cursor or {})
    try:
        poll = provider.fetch_mentions(dict(started_from))
    except ProviderError as exc:
        account_poll_failed(account=account, error=exc)
        raise
    fetched = Origin(timezone.now(), request_id_current())
    result = mentions_ingest(account=account, mentions=poll.mentions, route_now=True,
                             origins=[fetched] * len(poll.mentions))
    # Only now, after the rows committed, does the cursor move, and only from where this
    # poll started: two polls at once (the Redis lock lost in a Redis restart) must not
    # set the cursor back; a later poll refetches from the kept one and the unique key dedupes.
    state = {"last_polled_at": now, "last_success_at": now, "last_error": "", "consecutive_errors": 0,
             "rate_limited_until": None, "next_poll_at": None if poll.complete else now}
    if ChannelAccount.objects.filter(pk=account.pk, poll_cursor=started_from).update(poll_cursor=poll.cursor, **state):
        account.poll_cursor = poll.cursor
    else:
        log.info("account %s: another poll moved the cursor meanwhile; keeping that one", account.pk)
        ChannelAccount.objects.filter(pk=account.pk).update(**state)
    return result


def account_poll_failed(*, account: ChannelAccount, error: ProviderError) -> None:
    now = timezone.now()
    errors = account.consecutive_errors + 1
    next_poll = now + dt.timedelta(seconds=poll_backoff_seconds(error=error, errors=errors, now=now))
    limited = error.reset_at if isinstance(error, RateLimited) else None
    ChannelAccount.objects.filter(pk=account.pk).update(
        last_polled_at=now, last_error=error.reason[:2000], consecutive_errors=errors,
        next_poll_at=next_poll, rate_limited_until=limited,
    )
    log.warning("poll of account %s failed: %s", account.pk, error.reason)


# --- push delivery and the connector-health page (apps/connectors/hooks.py, views.py) ----
def push_delivery_accept(*, account: ChannelAccount, mentions: list[InboundMention]) -> int:
    """A verified push delivery is kept in PostgreSQL before the sender gets its
    2xx, then queued for ingest once that commits. If Redis loses the task, the
    row stays pending and push_deliveries_requeue sends it again."""
    # cleaned before the JSON is stored: a NUL or lone surrogate failed the insert (a 500, the
    # good messages of the delivery lost); an absurd time or javascript: URL is not kept
    payload = [mention_to_dict(mention_clean(m)) for m in mentions]
    # Kept as deliveries of at most PUSH_INGEST_MAX_MENTIONS: ingest bounds its transactions
    # by mentions (a 15,000-author delivery in one ran PostgreSQL out of lock memory).
    size = max(1, settings.PUSH_INGEST_MAX_MENTIONS)
    writer = push_writer_get(on_stored=push_delivery_stored)
    if payload and len(payload) <= size and writer is not None and not connection.in_atomic_block:
        # the web tier's group commit: stored (committed) with the deliveries of other requests,
        # ingest queued and health written once per account and batch (push_writer.py). A connection
        # this thread took (to look the account up) goes back to the pool first: held while waiting,
        # a burst of those took every connection and the writer waited for one (a 10-s stall).
        close_old_connections()
        writer.store(account=account, delivery=PushDelivery(account=account, mentions=payload))
        return len(payload)
    if payload:
        if len(payload) <= size:
            # One statement committing by itself (autocommit): one round trip to PostgreSQL where
            # BEGIN, INSERT and COMMIT took three. Still committed before the 2xx.
            delivery = _push_delivery_insert(PushDelivery(account=account, mentions=payload))
        else:
            with transaction.atomic():
                delivery = PushDelivery.objects.bulk_create([PushDelivery(account=account, mentions=payload[i:i + size])
                                                             for i in range(0, len(payload), size)])[0]
        # Now (autocommit), or at the commit of a caller's transaction. robust: Redis down must not
        # turn the stored delivery into a 5xx (the network would send it again); the sweep queues it.
        transaction.on_commit(lambda: _push_ingest_queue(account.pk, delivery.pk), robust=True)
    push_health_touch(account=account)
    return len(payload)


def push_delivery_stored(*, account: ChannelAccount, delivery_id: int) -> None:
    """After a commit of push deliveries (push_writer): ingest queued, the health fields written."""
    _push_ingest_queue(account.pk, delivery_id)
    push_health_touch(account=account)


def _push_delivery_insert(delivery: PushDelivery) -> PushDelivery:
    """delivery.save(), less the ORM's SQL compile for a statement that never changes (a tenth
    of the web tier's Python time per delivery): every concrete field, as save() sends them."""
    fields = [f for f in PushDelivery._meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(delivery, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(_push_delivery_insert_sql(tuple(f.column for f in fields)), values)
        delivery.pk = cursor.fetchone()[0]
    delivery._state.adding = False
    return delivery


@functools.lru_cache(maxsize=4)
def _push_delivery_insert_sql(columns: tuple[str, ...]) -> str:
    qn = connection.ops.quote_name
    return (f"INSERT INTO {qn(PushDelivery._meta.db_table)} ({', '.join(qn(c) for c in columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))}) RETURNING {qn(PushDelivery._meta.pk.column)}")


def push_health_touch(*, account: ChannelAccount) -> None:
    """The health page's "last push" and the clearing of a refusal's error, written at most
    once every PUSH_HEALTH_WRITE_SECONDS, after the delivery committed and in a statement of
    its own. Written in the delivery's transaction, every delivery of an account queued on
    that one row's lock through its commit (~60 deliveries/s; issue 19). The account row
    the view just read says whether a write is due; the WHERE decides among requests that
    read it at once: the first updates, the rest (blocked a moment on its lock) match nothing."""
    now = timezone.now()
    due = now - dt.timedelta(seconds=settings.PUSH_HEALTH_WRITE_SECONDS)
    if account.last_push_at is not None and account.last_push_at > due and not account.last_push_error:
        return
    ChannelAccount.objects.filter(
        Q(last_push_at__isnull=True) | Q(last_push_at__lte=due) | ~Q(last_push_error=""), pk=account.pk,
    ).update(last_push_at=now, last_push_error="")
    # the object may be the hooks handler's kept copy (selectors.push_account_get): it reads as written
    account.last_push_at, account.last_push_error = now, ""


def _push_ingest_flag(account_id: int) -> str:
    return f"push-ingest-queued:{account_id}"


def _push_ingest_queue(account_id: int, delivery_id: int) -> None:
    """One ingest task waiting per account, not one per delivery: at 200 one-mention
    deliveries a second the tasks that found their delivery already taken cost more
    than the ingest. The flag is cleared by the task before it takes the pending
    deliveries, so one committed after that queues a task of its own; it expires
    after PUSH_INGEST_COALESCE_SECONDS should the task be lost (and the sweep is
    behind that)."""
    from .tasks import push_delivery_ingest_task

    try:
        first = kv_add(_push_ingest_flag(account_id), str(delivery_id), settings.PUSH_INGEST_COALESCE_SECONDS)
    except Exception:  # noqa: BLE001 - the cache is Redis: queueing below fails too, the sweep sends it
        first = True
    if first:
        push_delivery_ingest_task.delay(delivery_id)


def _push_ingest_next(account_id: int, delivery_id: int) -> None:
    """The task for the deliveries after a full batch, queued now, not after this
    commit: another worker takes the next batch (SKIP LOCKED passes over this
    one's) while this one stores it. After the commit, one busy account kept one
    worker process busy however many there were (docs/performance-history.md item 28).
    Run eagerly (tests), the task would run inside this transaction, which SKIP
    LOCKED does not skip: after the commit then, as before."""
    from cxinbox.celery import app

    if app.conf.task_always_eager:
        transaction.on_commit(lambda: _push_ingest_queue(account_id, delivery_id), robust=True)
        return
    try:
        _push_ingest_queue(account_id, delivery_id)
    except Exception:  # noqa: BLE001 - the broker unreachable must not fail this batch: the sweep queues the rest
        log.warning("next push ingest task of account %s not queued; the sweep will", account_id, exc_info=True)


def push_delivery_ingest(*, delivery_id: int) -> IngestResult | None:
    """Stores the pending deliveries of this delivery's account and marks them done
    in the same transaction: done means stored. It takes them (SKIP LOCKED) up to
    PUSH_INGEST_BATCH deliveries and PUSH_INGEST_MAX_MENTIONS mentions: one mention per
    delivery arriving at 200/s would otherwise pay an ingest and a routing transaction
    each, and the work of one transaction stays bounded by mentions (a delivery bigger
    than that is split first). A delivery another task holds is skipped: that task
    marks it done, or its rollback leaves it pending for the sweep.
    Every failure counts: if a batch raises (any error, a database one included), it is
    halved and each half tried alone, down to single deliveries, so a poison delivery
    fails alone (an attempt counted on it, failed after PUSH_DELIVERY_MAX_ATTEMPTS) and
    its neighbours are stored now. Raises only when the database stays unreachable
    (the task is retried, the sweep is behind it)."""
    row = (PushDelivery.objects.filter(pk=delivery_id)
           .values_list("account_id", "status", _MentionCount("mentions"), "created_at").first())
    if row is None:
        return None
    account_id, status, size, created_at = row
    if status == PushDelivery.Status.PENDING:
        _push_ingest_gather(created_at)
    try:  # before the take: a delivery committed after this queues its own task
        kv_delete(_push_ingest_flag(account_id))
    except Exception:  # noqa: BLE001 - the flag expires by itself
        log.warning("push ingest flag of account %s not cleared (cache unreachable)", account_id)
    limit = max(1, settings.PUSH_INGEST_MAX_MENTIONS)
    if status == PushDelivery.Status.PENDING and (size or 0) > limit:
        _push_delivery_split(delivery_id=delivery_id, size=limit)  # stored before this change, or split lost
    batch = settings.PUSH_INGEST_BATCH
    result = IngestResult()
    taken: list[int] = []

    def take():
        taken[:] = [delivery_id]  # should the take itself raise, the attempt counts on this task's delivery
        deliveries = _push_deliveries_take(delivery_id, account_id, batch=batch, max_mentions=limit)
        taken[:] = [d.pk for d in deliveries]
        return deliveries

    held = _push_deliveries_try(account_id, take, taken, wait=False, result=result)
    if not taken:
        return None  # done, failed, gone, or being ingested by another task
    if held:
        # The deliveries with a mention whose author another ingest held: stored now, in a
        # transaction that holds nothing else while it waits (docs/performance-history.md item 29).
        _push_deliveries_try(account_id, None, held, wait=True, result=result)
    return result


def _push_ingest_gather(created_at: dt.datetime) -> None:
    """Waits until the delivery that queued this task is PUSH_INGEST_GATHER_SECONDS old,
    the account's flag still set: what arrives meanwhile queues no task and is taken by
    this one. At 200 one-mention deliveries a second, a task started at once took 2-5
    of them and paid its fixed cost (transactions, routing, the live pushes) for each
    few: the worker spent 3.7 ms of CPU a mention against 1.1 in a batch of 500, and
    the box was 97% busy at 200/s (issue 19). A task that starts late (a backlog)
    waits for nothing. Run eagerly (tests), nothing else can arrive: no wait."""
    from cxinbox.celery import app

    gather = settings.PUSH_INGEST_GATHER_SECONDS
    if gather <= 0 or app.conf.task_always_eager:
        return
    wait = gather - (timezone.now() - created_at).total_seconds()
    if wait > 0:
        time.sleep(min(wait, gather))  # min: a clock ahead of this one's never holds a task longer


class _MentionCount(Func):
    """How many mentions a delivery holds, read in the database (the JSON array's length)."""

    function = "JSON_ARRAY_LENGTH"
    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, function="JSONB_ARRAY_LENGTH", **extra)


def _push_delivery_split(*, delivery_id: int, size: int) -> None:
    """A pending delivery of more than `size` mentions becomes several of `size`
    (committed on its own, before any ingest): each is then a bounded ingest."""
    with transaction.atomic():
        delivery = (PushDelivery.objects.select_for_update(skip_locked=True)
                    .filter(pk=delivery_id, status=PushDelivery.Status.PENDING).first())
        if delivery is None or len(delivery.mentions) <= size:
            return
        chunks = [delivery.mentions[i:i + size] for i in range(0, len(delivery.mentions), size)]
        parts = PushDelivery.objects.bulk_create([
            PushDelivery(account_id=delivery.account_id, mentions=chunk, attempts=delivery.attempts,
                         request_id=delivery.request_id) for chunk in chunks[1:]])
        # accepted when the whole was (auto_now_add gave them now): their arrival -> routed time and backlog age
        PushDelivery.objects.filter(pk__in=[p.pk for p in parts]).update(created_at=delivery.created_at)
        delivery.mentions = chunks[0]
        delivery.save(update_fields=["mentions", "updated_at"])
    log.info("push delivery %s split into %d deliveries of at most %d mentions", delivery_id, len(chunks), size)


def _push_deliveries_try(account_id: int, take, ids: list[int], *, wait: bool, result: IngestResult) -> list[int]:
    """Stores the deliveries `take()` locks (or, without it, `ids`) in one transaction;
    returns the held ones (wait=False). If that raises, halves and tries each half
    alone; a single delivery that raises gets the attempt counted (push_delivery_fail)."""
    try:
        with transaction.atomic():
            deliveries = take() if take else list(
                PushDelivery.objects.select_for_update(skip_locked=True)
                .filter(pk__in=ids, status=PushDelivery.Status.PENDING).order_by("pk"))
            if not deliveries:
                return []  # else taken meanwhile by another task
            commit_without_flush_wait()  # lost in a crash, the deliveries are pending again: the sweep redoes them
            part, held = _push_deliveries_store(account_id, deliveries, wait=wait)
    except Exception as exc:  # noqa: BLE001 - any error: counted below, never a silent loop
        if not connection.is_usable():  # a dropped connection: a new one for what follows (or raises)
            connection.close()
        ids = list(ids)
        if len(ids) <= 1:
            if not ids:
                raise
            log.warning("push delivery %s could not be ingested", ids[0], exc_info=True)
            push_delivery_fail(delivery_id=ids[0], error=f"{type(exc).__name__}: {exc}")
            return []
        log.warning("batch of %d push deliveries failed (%s: %s); trying each half alone", len(ids),
                    type(exc).__name__, exc)
        half = len(ids) // 2
        return (_push_deliveries_try(account_id, None, ids[:half], wait=wait, result=result)
                + _push_deliveries_try(account_id, None, ids[half:], wait=wait, result=result))
    result.add(part)
    return held


class _Unlock(Exception):
    """Rolls a savepoint back, releasing the row locks taken in it."""


def _push_deliveries_take(delivery_id: int, account_id: int, *, batch: int, max_mentions: int) -> list[PushDelivery]:
    """This delivery and pending neighbours of its account, row-locked (SKIP LOCKED:
    what another task holds is its own), up to `batch` deliveries and `max_mentions`
    mentions in all. A full take queues the next task."""
    own = (PushDelivery.objects.select_for_update(skip_locked=True)
           .filter(pk=delivery_id, status=PushDelivery.Status.PENDING).first())
    deliveries = [own] if own else []
    room = max_mentions - (len(own.mentions) if own else 0)
    full = batch > 1 and room <= 0  # own fills the batch: the neighbours go to the next task
    if batch > 1 and (own is None or own.attempts == 0) and room > 0:
        # Only never-failed neighbours: one that failed before waits for its own task. One bigger
        # than a transaction's share (stored before deliveries were split) waits for its own too.
        neighbours = (PushDelivery.objects.select_for_update(skip_locked=True)
                      .filter(account_id=account_id, status=PushDelivery.Status.PENDING, attempts=0)
                      # the order of push_delivery_pending_order: a walk of the pending rows alone, where
                      # "pk" alone let the planner walk the primary key through every done row first
                      .exclude(pk=delivery_id).order_by("account_id", "pk"))
        wanted = batch - len(deliveries)
        try:
            with transaction.atomic():  # a savepoint: rolled back if more are locked than fit
                found = list(neighbours.annotate(n=_MentionCount("mentions"))
                             .filter(n__lte=max_mentions)[:wanted])
                fits, total = [], 0
                for delivery in found:
                    if total + delivery.n > room:
                        break
                    fits.append(delivery)
                    total += delivery.n
                full = len(found) >= wanted or len(fits) < len(found)
                if len(fits) < len(found):
                    raise _Unlock  # the ones that did not fit go back to the others (and the next task)
            deliveries += fits  # all fit (the common case): kept locked as they are
        except _Unlock:
            if fits:  # locked again, only those that fit
                deliveries += list(PushDelivery.objects.select_for_update(skip_locked=True)
                                   .filter(pk__in=[d.pk for d in fits], status=PushDelivery.Status.PENDING)
                                   .order_by("pk"))
    if full:  # more may wait, their tasks coalesced into this one
        _push_ingest_next(account_id, delivery_id)
    return deliveries


def _push_deliveries_store(account_id: int, deliveries: list[PushDelivery], *,
                           wait: bool) -> tuple[IngestResult, list[int]]:
    """Stores the locked deliveries' mentions and marks done those all of whose
    mentions are stored. wait=False: the mentions of authors another ingest holds
    (or of conversations a router holds) are not waited for; their deliveries stay pending (and locked until this
    transaction ends), returned for a second pass."""
    account = ChannelAccount.objects.get(pk=account_id)
    mentions = {d.pk: [mention_from_dict(m) for m in d.mentions] for d in deliveries}
    result = mentions_ingest(account=account, mentions=[m for d in deliveries for m in mentions[d.pk]],
                             route_now=True, defer_held=not wait,
                             origins=[Origin(d.created_at, d.request_id) for d in deliveries for _ in mentions[d.pk]])
    deferred = {m.external_id for m in result.deferred}
    held = {d.pk for d in deliveries
            if any(_mention_fit(m).external_id in deferred for m in mentions[d.pk])} if deferred else set()
    result.deferred = []
    now = timezone.now()
    PushDelivery.objects.filter(pk__any=[d.pk for d in deliveries if d.pk not in held]).update(
        status=PushDelivery.Status.DONE, done_at=now, attempts=F("attempts") + 1, last_error="", updated_at=now)
    return result, sorted(held)


def push_delivery_fail(*, delivery_id: int, error: str) -> PushDelivery | None:
    """An ingest attempt raised. Left pending for the sweep to try again, up to
    PUSH_DELIVERY_MAX_ATTEMPTS; then failed, with the error on the delivery and the
    account (the connector-health page), instead of being retried forever."""

    with transaction.atomic():
        delivery = PushDelivery.objects.select_for_update().filter(
            pk=delivery_id, status=PushDelivery.Status.PENDING).first()
        if delivery is None:
            return None
        delivery.attempts += 1
        delivery.last_error = error[:2000]
        if delivery.attempts >= settings.PUSH_DELIVERY_MAX_ATTEMPTS:
            delivery.status = PushDelivery.Status.FAILED
            ChannelAccount.objects.filter(pk=delivery.account_id).update(
                last_push_error=f"Delivery {delivery.pk} failed after {delivery.attempts} attempts: {error}"[:500])
            log.error("push delivery %s failed after %s attempts: %s", delivery.pk, delivery.attempts, error)
        else:
            log.warning("push delivery %s attempt %s failed (retried by the sweep): %s",
                        delivery.pk, delivery.attempts, error)
        delivery.save(update_fields=["attempts", "last_error", "status", "updated_at"])
    return delivery


def push_deliveries_requeue(*, older_than_seconds: float, limit: int = 500) -> int:
    """Re-queues deliveries still pending after older_than_seconds (their task was
    lost with Redis, or is failing and waits its next attempt). Touching updated_at
    spaces the re-queues of one delivery by the same delay."""
    from .tasks import push_delivery_ingest_task

    cutoff = timezone.now() - dt.timedelta(seconds=older_than_seconds)
    with transaction.atomic():
        ids = list(PushDelivery.objects.select_for_update(skip_locked=True)
                   .filter(status=PushDelivery.Status.PENDING, updated_at__lt=cutoff)
                   .order_by("updated_at").values_list("pk", flat=True)[:limit])
        if ids:
            PushDelivery.objects.filter(pk__in=ids).update(updated_at=timezone.now())
            transaction.on_commit(lambda: [push_delivery_ingest_task.delay(pk) for pk in ids], robust=True)
    if ids:
        log.warning("re-queued %d push deliveries still pending after %s s", len(ids), older_than_seconds)
    return len(ids)


def push_deliveries_prune(*, older_than_days: int) -> int:
    """Done deliveries are only a record once stored: dropped after older_than_days.
    Failed ones stay until someone looks (the health page counts them)."""
    cutoff = timezone.now() - dt.timedelta(days=older_than_days)
    deleted, _ = PushDelivery.objects.filter(status=PushDelivery.Status.DONE, done_at__lt=cutoff).delete()
    return deleted


def push_delivery_refuse(*, account: ChannelAccount, reason: str) -> None:
    """Counted and shown on the health page: a wrong secret shows up there, not only in logs."""

    ChannelAccount.objects.filter(pk=account.pk).update(
        last_push_error=reason[:500], push_refused_count=F("push_refused_count") + 1)
    account.last_push_error = reason[:500]  # so the next good delivery clears it at once, kept copy or not


def account_hook_secrets_rotate(*, account: ChannelAccount, actor=None) -> dict:
    """New inbound token and signing secret for push delivery; the old ones stop working at once."""
    import secrets

    new = {"inbound_token": secrets.token_urlsafe(32), "signing_secret": secrets.token_urlsafe(32)}
    ChannelAccount.objects.filter(pk=account.pk).update(hook_secrets=new, updated_at=timezone.now())
    account.hook_secrets = new
    log.info("hook secrets of account %s rotated by %s", account.pk, getattr(actor, "username", "system"))
    return new


def account_poll_retry(*, account: ChannelAccount, actor=None) -> None:
    """An admin or supervisor asks for a poll now (after fixing credentials): the
    backoff is lifted and the account is polled in its own task."""
    from .tasks import account_poll_task

    with transaction.atomic():
        ChannelAccount.objects.filter(pk=account.pk).update(next_poll_at=timezone.now())
        transaction.on_commit(lambda: account_poll_task.delay(account.pk))
    log.info("poll of account %s requested by %s", account.pk, getattr(actor, "username", "system"))
