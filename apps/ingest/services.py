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
from dataclasses import dataclass, field
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.connectors.models import ChannelAccount
from apps.connectors.providers.base import InboundMention, mention_clean
from apps.contacts.models import Customer, SocialIdentity
from apps.core.db import rows_insert, rows_insert_values, rows_update
from apps.core.request_id import request_id_current
from apps.inbox.events import event_record, events_record_many
from apps.inbox.models import OPEN_STATUSES, Conversation, Message, Status
from apps.inbox.realtime import inbox_push_many
from apps.insights.services import text_score
from apps.routing.pending import messages_unrouted_add
from apps.routing.services import MessageFacts, RoutingHints, conversations_route_later, conversations_route_now

log = logging.getLogger(__name__)



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
    conversation = (
        Conversation.objects.filter(channel_account=account, identity=identity, status__in=OPEN_STATUSES)
        .order_by("-id")
        .first()
    )
    return conversation if conversation_continues(conversation, account, mention.created_at) else None


def conversation_continues(conversation: Conversation | None, account: ChannelAccount, at: dt.datetime) -> bool:
    """Whether a customer's new top-level post (no reply, no platform thread) joins their open
    conversation: only within the account's thread window of their last message there. Joining
    every post made threads piles of unrelated topics (a refund, dark mode, a thank-you)."""
    if conversation is None or not account.thread_window_minutes:
        return False
    last = conversation.last_inbound_at or conversation.created_at
    return last is not None and abs(at - last) <= dt.timedelta(minutes=account.thread_window_minutes)


def _latest_text_follow(conversation: Conversation, mention: InboundMention) -> None:
    """The list shows the latest customer message: a mention newer than the last one replaces it."""
    if conversation.last_inbound_at is None or mention.created_at >= conversation.last_inbound_at:
        conversation.latest_text = mention.text[:300]


def _conversation_reopen(conversation: Conversation, at: dt.datetime) -> None:
    _conversation_reopen_fields(conversation, at)
    event_record(conversation=conversation, kind="reopened", reason="new customer message")


def mention_store(*, account: ChannelAccount, mention: InboundMention, result: IngestResult,
                  score: tuple | None = None, origin: Origin | None = None) -> Message | None:
    """One mention, in its own savepoint: a duplicate rolls back only itself.
    `score`: insights.text_score of its text, if computed already."""
    language, sentiment, sentiment_label = score or text_score(mention.text, mention.language)
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
                    latest_text=mention.text[:300],
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
            _latest_text_follow(conversation, mention)
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


def mention_fit(m: InboundMention) -> InboundMention:
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
    mentions = [mention_fit(m) for m in mentions]
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
    scores = {m.external_id: text_score(m.text, m.language) for m in fresh}
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
        if conv is None and conversation_continues(open_for.get(identity.pk), account, m.created_at):
            conv = open_for[identity.pk]
        if conv is None:
            conv = Conversation(
                channel_account=account, customer_id=identity.customer_id, identity=identity,
                external_thread_id=m.thread_id or m.external_id, is_public=not m.is_private, status=Status.NEW,
                cycle_started_at=m.created_at, subject=m.text[:300], latest_text=m.text[:300],
                created_at=now, updated_at=now,
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
        _latest_text_follow(conv, m)
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
        rows_update(touched.values(), ["status", "latest_text", "last_message_at", "last_inbound_at", "updated_at"])
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
