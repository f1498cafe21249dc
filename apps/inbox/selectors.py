"""Reads for the inbox and the API. Visibility by role lives here, once."""
from __future__ import annotations

import json
import re

from django.db import connection
from django.db.models import Case, Count, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Lower
from django.db.models.lookups import Contains
from django.utils import timezone

from apps.accounts.models import Role, Team, User
from apps.accounts.permissions import WORKING_ROLES, user_has_role
from apps.connectors.models import ChannelAccount
from apps.contacts.models import Customer, SocialIdentity
from apps.core.errors import DomainError
from apps.core.params import when_param

from .models import (OPEN_STATUSES, CannedResponse, Conversation, ConversationEvent, Message, Note, Notification, Queue,
                     ReadMark, Status)

DONE_STATUSES = (Status.RESOLVED, Status.CLOSED)
# The inbox's views, in the order the sidebar shows them ("queue" takes a queue id).
VIEWS = {
    "mine": "My conversations",
    "unassigned": "Unassigned",
    "all": "All open",
    "mentions": "Mentions of me",
    "snoozed": "Snoozed",
    "resolved": "Resolved",
    "spam": "Spam",
    "queue": "Queue",
}
# A list row shows only the account's provider, name and handle: every other
# field is deferred, so encrypted ones (credentials, hook secrets: Fernet + JSON)
# are never decrypted per row, which was the biggest cost of rendering a page,
# and a field added to the account later is deferred too.
ACCOUNT_SHOWN = ("id", "provider", "name", "handle")
LIST_DEFERRED = tuple(
    f"channel_account__{f.name}" for f in ChannelAccount._meta.concrete_fields if f.name not in ACCOUNT_SHOWN
) + ("customer__notes", "customer__tags", "assignee__password", "assignee__signature", "assignee__channel_capacity")
SENTIMENT_POSITIVE, SENTIMENT_NEGATIVE = 0.05, -0.05  # DESIGN.md thresholds (VADER compound)


def conversations_visible_to(user) -> QuerySet[Conversation]:
    """Who sees what (docs/roles.md). Admins: all. Supervisors: the queues of the
    teams they lead, what is assigned to them, and the unrouted (no queue yet:
    they triage it). Agents: their teams' queues and what is assigned to them.
    Marketing and unknown roles: none (reports only)."""

    qs = Conversation.objects.all()
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if user.is_superuser or user.role == Role.ADMIN:
        return qs
    # Queue ids from a subquery, not a join on the queue: the test stays on the
    # conversation row, so PostgreSQL applies it in the index scan, before costlier
    # filters (a search's per-conversation message check), and no DISTINCT is needed.
    if user.role == Role.SUPERVISOR:
        led = Queue.objects.filter(team__in=Team.objects.filter(leads=user).values("pk")).values("pk")
        return qs.filter(Q(queue_id__in=led) | Q(assignee=user) | Q(queue__isnull=True))
    if user.role == Role.AGENT:
        mine = Queue.objects.filter(team__in=Team.objects.filter(members=user).values("pk")).values("pk")
        return qs.filter(Q(queue_id__in=mine) | Q(assignee=user))
    return qs.none()


def _not_snoozed(now):
    return Q(snoozed_until__isnull=True) | Q(snoozed_until__lte=now)


def _view_filter(*, user, view: str, queue_id=None, now=None) -> Q:
    """The Q for one inbox view. Working views show open, unsnoozed, non-spam work."""
    now = now or timezone.now()
    working = Q(status__in=OPEN_STATUSES, is_spam=False) & _not_snoozed(now)
    if view == "mine":
        return working & Q(assignee=user)
    if view == "unassigned":
        return working & Q(assignee__isnull=True)
    if view == "queue":
        return working & Q(queue_id=queue_id)
    if view == "mentions":
        return Q(is_spam=False, pk__in=Note.objects.filter(mentions=user).values("conversation_id"))
    if view == "snoozed":
        return Q(status__in=OPEN_STATUSES, is_spam=False, snoozed_until__gt=now)
    if view == "resolved":
        return Q(status__in=DONE_STATUSES, is_spam=False)
    if view == "spam":
        return Q(is_spam=True)
    return working  # "all"


# A search picks its plan from how many messages the word matches (PostgreSQL's
# estimate, from the GIN index statistics): a common word fills the first page
# within a few conversations of the list's order, so each one's messages are
# checked as the list is walked; a rare word would make that walk read every
# thread, so its few matches come from the index first, as ids.
SEARCH_WALK_ABOVE = 50_000  # estimated matching messages
SEARCH_IDS_UP_TO = 2_000  # matching conversations (or identities) passed to the list as ids


def _estimated_rows(qs: QuerySet) -> int:
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


def _search(qs: QuerySet, q: str) -> QuerySet:
    """Full-text over message text on PostgreSQL (GIN index, migration 0003),
    icontains on SQLite; the customer's handle or name matches on both (trigram
    indexes on PostgreSQL, migration 0005)."""
    q = q.strip()
    identities = SocialIdentity.objects.filter(Q(handle__istartswith=q.lstrip("@")) | Q(display_name__icontains=q))
    if connection.vendor != "postgresql":
        hits = Message.objects.filter(text__icontains=q)
        return qs.filter(Q(identity_id__in=identities.values("pk")) | Q(subject__icontains=q)
                         | Q(pk__in=hits.values("conversation_id")))
    from django.contrib.postgres.search import SearchQuery, SearchVector

    hits = Message.objects.annotate(fts=SearchVector("text", config="simple")).filter(
        fts=SearchQuery(q, config="simple", search_type="websearch"))
    if _estimated_rows(hits.order_by()) > SEARCH_WALK_ABOVE:
        # For each conversation in list order, its few messages (msg_thread_order). A scalar
        # subquery, not EXISTS: PostgreSQL may turn an EXISTS into a hash of every match.
        walk_hits = hits
        if q.isascii() and q.isalnum():
            # One plain word: a message can only match if its lowercased text contains it
            # (the 'simple' config lowercases with the same lower()): a far cheaper test than
            # to_tsvector, which then runs only on the messages that pass (the walk: ~2x faster).
            walk_hits = hits.filter(Contains(Lower("text"), q.lower()))
        first_hit = Subquery(walk_hits.order_by().filter(conversation_id=OuterRef("pk")).values("pk")[:1])
        return qs.alias(search_hit=first_hit).filter(
            Q(identity_id__in=identities.values("pk")) | Q(search_hit__isnull=False))
    # One query for both id lists (each capped): as literal ids, PostgreSQL ORs
    # the primary key and identity_id indexes and sorts the few rows found.
    cap = SEARCH_IDS_UP_TO
    found = list(hits.order_by().values_list("conversation_id", Value(0))[:cap + 1].union(
        identities.order_by().values_list("pk", Value(1))[:cap + 1], all=True))
    # Complete unless the cap was hit (counted in rows: one conversation may match in many messages).
    message_rows = [pk for pk, side in found if side == 0]
    identity_rows = [pk for pk, side in found if side == 1]
    by_message = Q(pk__in=set(message_rows)) if len(message_rows) <= cap else Q(
        pk__in=hits.values("conversation_id"))
    by_person = Q(identity_id__in=identity_rows) if len(identity_rows) <= cap else Q(
        identity_id__in=identities.values("pk"))
    return qs.filter(by_message | by_person)


def _parse_when(value: str, *, end: bool = False):
    """BadParameter (400) for an impossible date (2024-02-31) or one outside what
    PostgreSQL and Python hold once a day or a zone is applied (9999-12-31)."""
    return when_param("date_to" if end else "date_from", value, end=end)


def csv_values(value) -> list[str]:
    return [v for v in re.split(r"[,\s]+", str(value)) if v]


_csv = csv_values


def conversation_list_for_user(*, user, filters: dict | None = None) -> QuerySet[Conversation]:
    """The inbox list. Filters (all optional): view (+ queue for view=queue), status,
    queue, assignee (id | none | me), priority (buckets), channel, sentiment
    (positive | neutral | negative | unscored), tag, date_from / date_to (last
    message), q (search). Sorted by priority bucket, then SLA due (none last)."""
    filters = filters.dict() if hasattr(filters, "dict") else dict(filters or {})  # QueryDict: last values
    # Ids come as text from the query string: one that is not a number matches
    # nothing, instead of a 500 (found by tests/security/test_fuzz_api.py).
    # A number past bigint matches nothing too; "none" is the unrouted (queue) or unassigned.
    for key in ("queue", "assignee"):
        value = str(filters.get(key) or "")
        words = ("none", "me") if key == "assignee" else ("none",)
        if value and value not in words and not (value.isascii() and value.isdigit() and len(value) < 19):
            filters[key] = "0"
    qs = conversations_visible_to(user).select_related(
        "channel_account", "identity", "customer", "queue", "assignee"
    ).defer(*LIST_DEFERRED).prefetch_related("tags")
    view = filters.get("view")
    if view in VIEWS:
        queue_id = None if filters.get("queue") == "none" else filters.get("queue")
        qs = qs.filter(_view_filter(user=user, view=view, queue_id=queue_id))
    if filters.get("status"):
        qs = qs.filter(status__in=_csv(filters["status"]))
    if filters.get("queue") == "none":
        qs = qs.filter(queue__isnull=True)
    elif filters.get("queue"):
        qs = qs.filter(queue_id=filters["queue"])
    if filters.get("assignee"):
        value = filters["assignee"]
        if value == "none":
            qs = qs.filter(assignee__isnull=True)
        elif value == "me":
            qs = qs.filter(assignee=user)
        else:
            qs = qs.filter(assignee_id=value)
    if filters.get("priority"):
        qs = qs.filter(priority_bucket__in=[int(p) for p in _csv(filters["priority"])
                                            if p.isascii() and p.isdigit() and len(p) < 4])
    if filters.get("channel"):
        qs = qs.filter(channel_account__provider=filters["channel"])
    sentiment = filters.get("sentiment")
    if sentiment == "positive":
        qs = qs.filter(last_sentiment__gte=SENTIMENT_POSITIVE)
    elif sentiment == "negative":
        qs = qs.filter(last_sentiment__lte=SENTIMENT_NEGATIVE)
    elif sentiment == "neutral":
        qs = qs.filter(last_sentiment__gt=SENTIMENT_NEGATIVE, last_sentiment__lt=SENTIMENT_POSITIVE)
    elif sentiment == "unscored":
        qs = qs.filter(last_sentiment__isnull=True)
    if filters.get("tag"):
        qs = qs.filter(pk__in=Conversation.tags.through.objects.filter(tag__name=filters["tag"]).values(
            "conversation_id"))
    if filters.get("date_from") and (start := _parse_when(filters["date_from"])):
        qs = qs.filter(last_message_at__gte=start)
    if filters.get("date_to") and (end := _parse_when(filters["date_to"], end=True)):
        qs = qs.filter(last_message_at__lt=end)
    if filters.get("q"):
        qs = _search(qs, str(filters["q"]))
    if view in ("resolved", "mentions", "spam"):
        return qs.order_by(F("last_message_at").desc(nulls_last=True), "-id")  # conv_done_order
    return qs.order_by("priority_bucket", F("sla_due_at").asc(nulls_last=True), "-last_message_at", "-id")


# What a list row shows (apps/inbox/list_rows.py turns these into display text).
PAGE_ROW_FIELDS = (
    "id", "status", "priority_bucket", "is_public", "subject", "latest_text", "last_sentiment", "last_message_at", "last_inbound_at",
    "sla_due_at", "sla_breached", "snoozed_until", "identity__handle", "identity__display_name",
    "channel_account__provider", "queue_id", "queue__name", "assignee_id", "assignee__username",
    "assignee__first_name", "assignee__last_name",
)


def conversation_page_for_user(*, user, filters: dict, offset: int = 0, limit: int = 50) -> list[dict]:
    """One page of the list as plain values (PAGE_ROW_FIELDS, `tags`: names, and
    `unread` for this user): one query for the ids, one for the rows, one for the tags."""
    # Two steps: the ids of the page from the conversation table alone (sorted,
    # limited: an index scan on conv_open_order), then the rows and their joins
    # for just those ids. Joining first made PostgreSQL join every open row.
    ids = list(conversation_list_for_user(user=user, filters=filters).select_related(None)
               .prefetch_related(None).values_list("pk", flat=True)[offset:offset + limit + 1])
    if not ids:
        return []
    read_at = ReadMark.objects.filter(user=user, conversation=OuterRef("pk")).values("read_at")[:1]
    # Values, not model instances: building a conversation, its account, identity,
    # queue, assignee and tags as models took most of the selector's time (~8 ms a page).
    found = {row["id"]: row for row in Conversation.objects.filter(pk__in=ids).order_by().values(
        *PAGE_ROW_FIELDS, my_read_at=Subquery(read_at))}
    tags = {}
    for conversation_id, name in (Conversation.tags.through.objects.filter(conversation_id__in=ids)
                                  .order_by("id").values_list("conversation_id", "tag__name")):
        tags.setdefault(conversation_id, []).append(name)
    rows = [found[pk] for pk in ids if pk in found]
    for row in rows:
        row["tags"] = tags.get(row["id"], [])
        row["unread"] = row["last_inbound_at"] is not None and (
            row["my_read_at"] is None or row["last_inbound_at"] > row["my_read_at"])
    return rows


def inbox_counts(*, user, queues=()) -> dict:
    """Counts per view: one pass over the working rows (open, not spam: what every
    counted view shows), grouped by queue and assignee, summed here; and the
    unread @mentions."""
    now = timezone.now()
    # The WHERE is conv_open_order's predicate: PostgreSQL reads the ~3% open rows
    # from an index instead of filtering all conversations (1M: ~700 -> ~40 ms), and
    # the groups need no per-view FILTER (four of them cost most of the time).
    # COUNT(*), not COUNT(id): every column read is in conv_open_counts (an index-only scan).
    groups = (conversations_visible_to(user).filter(status__in=OPEN_STATUSES, is_spam=False).order_by()
              .values_list("queue_id", "assignee_id")
              .annotate(n=Count("*"), snoozed=Count("snoozed_until", filter=Q(snoozed_until__gt=now))))
    counts = dict.fromkeys(("mine", "unassigned", "all", "snoozed"), 0)
    per_queue = {}
    for queue_id, assignee_id, n, snoozed in groups:
        awake = n - snoozed
        counts["all"] += awake
        counts["snoozed"] += snoozed
        if assignee_id is None:
            counts["unassigned"] += awake
        elif assignee_id == user.pk:
            counts["mine"] += awake
        per_queue[queue_id] = per_queue.get(queue_id, 0) + awake
    counts["mentions"] = Notification.objects.filter(
        user=user, kind=Notification.Kind.MENTIONED, read_at__isnull=True).count()
    counts["queues"] = {q.pk: per_queue.get(q.pk, 0) for q in queues}
    return counts


def assignee_choices() -> list[tuple[int, str]]:
    """(id, display name) of every active working user, for the list's assignee filter:
    plain values, named by User.display_name's rule (full name, else username)."""

    users = (User.objects.filter(is_active=True, role__in=WORKING_ROLES).order_by("first_name", "username")
             .values_list("pk", "username", "first_name", "last_name"))
    return [(pk, f"{first} {last}".strip() or username) for pk, username, first, last in users]


def queues_for_user(*, user) -> list:
    """The queues whose view a user gets in the sidebar."""

    qs = Queue.objects.select_related("team").order_by("name")
    if user.is_superuser or user.role == Role.ADMIN:
        return list(qs)
    team_q = Q(team__members=user)
    if user.role == Role.SUPERVISOR:
        team_q |= Q(team__leads=user)
    return list(qs.filter(team_q).distinct())


def conversation_thread(*, conversation: Conversation) -> dict:
    messages = list(
        Message.objects.filter(conversation=conversation).select_related("author_identity", "author_user")
        .order_by("sent_at", "id")
    )
    notes = list(Note.objects.filter(conversation=conversation).select_related("author")
                 .prefetch_related("mentions"))
    events = list(ConversationEvent.objects.filter(conversation=conversation).select_related("actor"))
    return {"messages": messages, "notes": notes, "events": events}


def customer_other_conversations(*, user, conversation: Conversation, limit: int = 10) -> list[Conversation]:
    """The same customer's other conversations, on any channel, that this user may open: the open
    ones first (a new post starts its own conversation, so the agent sees what else is going on)."""
    still_open = Case(When(status__in=OPEN_STATUSES, then=Value(0)), default=Value(1))
    return list(
        conversations_visible_to(user).filter(customer_id=conversation.customer_id).exclude(pk=conversation.pk)
        .select_related("channel_account").defer(*(f for f in LIST_DEFERRED if f.startswith("channel_account__")))
        .order_by(still_open, "-last_message_at", "-id")[:limit]
    )


def conversation_next_for_user(*, user, after: Conversation, wanted_id: str = "") -> Conversation | None:
    """Where "Resolve" goes next: the conversation the page says followed this one in the list the
    agent came from (if they may still open it and it is still to do), else the top of their own
    work, else the top of everything they may work."""
    if wanted_id.isascii() and wanted_id.isdigit() and len(wanted_id) < 19 and int(wanted_id) != after.pk:
        wanted = (conversation_list_for_user(user=user, filters={"view": "all"})
                  .filter(pk=int(wanted_id)).first())
        if wanted is not None:
            return wanted
    for view in ("mine", "all"):
        following = conversation_list_for_user(user=user, filters={"view": view}).exclude(pk=after.pk).first()
        if following is not None:
            return following
    return None


def canned_responses_for_user(*, user) -> list[CannedResponse]:
    """Global responses and those of the user's teams."""
    return list(CannedResponse.objects.filter(Q(team__isnull=True) | Q(team__members=user)).distinct()
                .order_by("shortcut"))


def notifications_unread_for_user(*, user, limit: int = 20) -> list[Notification]:
    return list(Notification.objects.filter(user=user, read_at__isnull=True)
                .select_related("actor", "conversation__identity")[:limit])


def conversation_get_for_user(*, user, conversation_id: int) -> Conversation:
    """Raises Conversation.DoesNotExist when it is not visible: a 404, never a leak."""
    return conversations_visible_to(user).select_related(
        "channel_account", "identity", "customer", "queue", "assignee"
    ).prefetch_related(Prefetch("tags")).get(pk=conversation_id)


__all__ = [
    "VIEWS", "OPEN_STATUSES", "conversations_visible_to", "conversation_list_for_user", "conversation_page_for_user",
    "inbox_counts", "queues_for_user", "conversation_thread", "customer_other_conversations",
    "canned_responses_for_user", "notifications_unread_for_user", "conversation_get_for_user",
]


# --- ownership (docs/roles.md, Ownership) ----------------------------------------------------------------

LIST_FILTER_KEYS = ("view", "status", "queue", "assignee", "priority", "channel", "sentiment", "tag", "date_from",
                    "date_to", "q")


def conversation_filters_check(filters: dict) -> None:
    """Refuses (DomainError, a 400 with the reason) a filter the list would ignore or
    read as "no filter": an unknown key, a view or sentiment it does not know, a status,
    priority, queue, assignee or date that is not one. A bulk move "of all matching"
    used to move everything the user sees when a key was misspelt."""
    def bad(key, value):
        return DomainError(f"Filter {key}={str(value)[:50]!r} is not valid.")

    unknown = sorted(str(k)[:50] for k in filters if k not in LIST_FILTER_KEYS)
    if unknown:
        raise DomainError(f"Unknown filter(s): {', '.join(unknown)}; known: {', '.join(LIST_FILTER_KEYS)}.")
    for key, value in filters.items():
        value = str(value)
        if value == "":
            continue
        if key == "view" and value not in VIEWS:
            raise bad(key, value)
        if key == "sentiment" and value not in ("positive", "negative", "neutral", "unscored"):
            raise bad(key, value)
        if key == "status" and not set(_csv(value)) <= set(Status.values):
            raise bad(key, value)
        if key == "priority" and not all(p in ("0", "1", "2", "3") for p in _csv(value)):
            raise bad(key, value)
        if key in ("queue", "assignee"):
            words = ("none", "me") if key == "assignee" else ("none",)
            if value not in words and not (value.isascii() and value.isdigit() and len(value) < 19):
                raise bad(key, value)
        if key in ("date_from", "date_to"):
            try:
                ok = _parse_when(value, end=key == "date_to")
            except Exception:  # noqa: BLE001 - whatever the parser refuses is a bad filter here
                ok = None
            if not ok:
                raise bad(key, value)


def conversation_assignees(*, conversation: Conversation, actor):
    """Who may be given this conversation, on the page and in the API alike: working
    users of its queue's team (members or leads), who will then see it; for an unrouted
    one, the working users of the teams the actor leads and the actor (admins: anyone
    working)."""

    qs = User.objects.filter(is_active=True, role__in=WORKING_ROLES)
    if conversation.queue_id is not None:

        team_id = Queue.objects.filter(pk=conversation.queue_id).values("team_id")
        return qs.filter(Q(teams__in=team_id) | Q(led_teams__in=team_id)).distinct()
    if user_has_role(actor, Role.ADMIN):
        return qs
    return qs.filter(Q(teams__leads=actor) | Q(pk=actor.pk)).distinct()


def customers_visible_to(user):
    """Customers with a conversation the user sees (admins: all; marketing: none)."""
    qs = Customer.objects.all()
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if user.is_superuser or user.role == Role.ADMIN:
        return qs
    if user.role not in (Role.AGENT, Role.SUPERVISOR):
        return qs.none()
    return qs.filter(pk__in=conversations_visible_to(user).values("customer_id"))


def canned_responses_for(user) -> QuerySet[CannedResponse]:
    """Global ones plus those of the user's teams (member or lead); admins: all."""
    qs = CannedResponse.objects.select_related("team").order_by("team__name", "shortcut")
    if user_has_role(user, Role.ADMIN):
        return qs
    if not user_has_role(user, Role.AGENT, Role.SUPERVISOR):
        return qs.none()
    teams = Team.objects.filter(Q(members=user) | Q(leads=user)).values("pk")
    return qs.filter(Q(team__isnull=True) | Q(team__in=teams))
