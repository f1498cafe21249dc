"""Routing: what happens to a conversation after its messages are stored.

conversations_route (queue `routing`, one task per ingested batch): language +
sentiment (scored by ingest with the message; a message stored unscored is
scored here) -> rules (at the start of each cycle) -> priority score -> SLA due
times -> assignment, for the whole batch in one transaction: configuration,
agents and loads read once, rows written in bulk, audit events in one INSERT,
one live push. conversation_route is the same path with one conversation.
What a rule does is rule_actions.py; assignment.py picks agents; sla.py sets
priority and due times (and runs the beat's aging and breach checks);
backlog.py hands waiting work to agents who have room.

Locks, so two workers never double-assign or overfill an agent: a routing
transaction locks its conversations (one statement, in id order), then the
candidate agents of all of them in one statement ordered by id; a backlog
drain (backlog.py) locks the team's agents the same way, then takes waiting
conversations with SKIP LOCKED (never waits on a row a router holds). Every assignment to an
agent happens under that agent's row lock, so the load counted under it is
the real one."""
from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace

from django.db import connection, transaction
from django.utils import timezone

from apps.contacts.models import Customer
from apps.core.db import commit_without_flush_wait, rows_insert, rows_update
from apps.core.task_queue import task_named
from apps.inbox.models import OPEN_STATUSES, Conversation, Message, Queue, Status, Tag
from apps.insights.services import messages_analyze

from . import routed_latency
from .assignment import (AgentPicker, agent_is_available, agent_loads, agents_lock, assignment_apply, has_room,
                         last_assigned, team_candidates)
from .config_cache import RoutingCache
from .models import ConversationRouting
from .pending import PENDING_EXPIRY_SECONDS, pending_list, pending_take, scores_ahead, unrouted_take
from .rule_actions import RuleOutcome, auto_reply_send, rules_run
from .rules import RuleContext
from .scoring import PriorityInputs, urgency_terms
from .sla import DONE_STATUSES, SLA_FIELDS, minutes_since, priority_apply, sla_apply, waiting_since_many
from .trail import Trail

log = logging.getLogger(__name__)


# --- the pipeline ----------------------------------------------------------------------------------

@dataclass
class _Item:
    """One conversation of a routing batch, through the steps."""
    conversation: Conversation
    messages: list[Message]
    state: ConversationRouting | None
    outcome: RuleOutcome = field(default_factory=RuleOutcome)
    reopened: bool = False
    assign: bool = False  # still unassigned after rules, priority and SLA: auto-assignment runs
    pushed: bool = False  # browsers are told "conversation_updated"
    auto_reply: object = None
    state_is_new: bool = False  # first routing: the state row is inserted at the end
    skipped: bool = False  # every message given was routed already: nothing done
    status_before: str = ""


@dataclass(slots=True)
class MessageFacts:
    """What routing reads of a customer message that ingest just stored (as a Message
    loaded with MESSAGE_FIELDS would give it)."""
    pk: int
    conversation_id: int
    text: str
    sent_at: dt.datetime
    language: str
    sentiment: float | None
    sentiment_label: str


@dataclass
class RoutingHints:
    """What an ingest transaction that just committed holds of the conversations it
    wrote: the rows as written (with their identity), and its customer messages.
    Routing in the same process right after that commit uses a conversation from
    here only if its row is still the version that transaction wrote (its `xmin`,
    read under routing's lock); any other writer since, and it is read again.
    Saves reading back, and building again, what was just written (item 34)."""
    xmin: str
    conversations: dict[int, Conversation] = field(default_factory=dict)
    messages: dict[int, list[MessageFacts]] = field(default_factory=dict)


# What routing reads of a customer message (not its raw payload).
MESSAGE_FIELDS = ["conversation", "direction", "text", "sent_at", "language", "sentiment", "sentiment_label"]
# What routing writes on a conversation, in one UPDATE for the batch.
ROUTED_FIELDS = ["first_sentiment", "last_sentiment", "language", "queue", "priority", "priority_bucket",
                 *SLA_FIELDS, "status", "is_spam", "assignee", "last_assignee", "updated_at"]
STATE_FIELDS = ["inputs", "reasons", "rules_cycle_at", "waiting_since", "bucket_set", "sla_policy",
                "breached_targets", "sla_next_check_at", "updated_at"]


def conversations_route_later(*, pairs) -> None:
    """After an ingest batch commits: one routing task for it (durable, retried),
    and the batch also on a Redis list that the next routing task to start takes
    whole. Under load, one task then routes the batches of several ingest tasks
    in one transaction (a one-mention push delivery is an ingest batch of one);
    the tasks whose batches were taken find their messages routed and stop
    there. A list lost with Redis loses nothing: each task still owns its batch."""
    pairs = [[int(conversation_id), [int(m) for m in message_ids]] for conversation_id, message_ids in pairs]
    if not pairs:
        return
    client, key = pending_list()
    if client is not None:
        try:
            client.pipeline().rpush(key, json.dumps(pairs)).expire(key, PENDING_EXPIRY_SECONDS).execute()
        except Exception:  # noqa: BLE001 - the list only groups work; the task below carries it
            log.warning("routing: could not add to the pending list", exc_info=True)
    if len(pairs) == 1:
        task_named("routing.route_conversation").delay(*pairs[0])
    else:
        task_named("routing.route_conversations").delay(pairs)


def conversations_route_now(*, pairs, hints: RoutingHints | None = None) -> None:
    """Routes `pairs` and the batches waiting on the pending list in one transaction,
    in the caller's process; a conversation that fails is handed to the
    single-conversation task and its retry policy. `hints`: what the ingest
    transaction that stored `pairs` holds of them (RoutingHints)."""
    pairs = [[int(conversation_id), [int(m) for m in message_ids]] for conversation_id, message_ids in pairs]
    if not pairs:
        return
    batch = pending_take(pairs)
    failed = set(conversations_route(pairs=batch, hints=hints))
    for conversation_id, message_ids in batch:
        if conversation_id in failed:
            log.warning("routing #%s failed in a batch; retrying it alone", conversation_id)
            task_named("routing.route_conversation").delay(conversation_id, message_ids, False)


def conversations_route(*, pairs, cache: RoutingCache | None = None, hints: RoutingHints | None = None) -> list[int]:
    """Routes a batch ([(conversation_id, message_ids), ...]) in one transaction.
    If the batch fails as a whole (a deadlock with another writer, a bad row),
    each conversation is routed alone in its own transaction, as before batching.
    Returns the ids that failed then (the caller retries those alone)."""
    cache = cache or RoutingCache()
    pairs = [(int(conversation_id), list(message_ids)) for conversation_id, message_ids in pairs]
    if hints is not None and all(conversation_id in hints.conversations for conversation_id, _ in pairs):
        scores = {}  # just stored, scored by ingest: nothing to score, and its markers are there
    else:
        scores = scores_ahead(pairs)
        if pairs and all(message_ids for _, message_ids in pairs) and scores is None:
            return []  # every message routed already (another task took this batch): one query, no transaction
        scores = scores or {}
    try:
        _route_and_reply(pairs, cache, scores, hints)
        return []
    except Exception:  # noqa: BLE001 - fall back to one transaction per conversation
        log.warning("routing a batch of %d conversations failed; routing them one by one", len(pairs),
                    exc_info=True)
    failed = []
    for conversation_id, message_ids in pairs:
        try:
            _route_and_reply([(conversation_id, message_ids)], cache, scores, hints)
        except Exception:  # noqa: BLE001 - one conversation must not stop the batch
            log.warning("routing #%s failed in a batch", conversation_id, exc_info=True)
            failed.append(conversation_id)
    return failed


def conversation_route(*, conversation_id: int, message_ids: list[int],
                       cache: RoutingCache | None = None) -> Conversation:
    """One conversation: the batch path with a batch of one."""
    routed = _route_and_reply([(conversation_id, list(message_ids))], cache or RoutingCache())
    if conversation_id not in routed:
        raise Conversation.DoesNotExist(f"conversation {conversation_id} does not exist")
    return routed[conversation_id]


def _routed_after_commit(taken: dict[int, tuple[dt.datetime, str]], items: list[_Item]) -> None:
    """Once a routing transaction committed: each message's arrival -> routed time into
    the histogram (routed_latency), and one log line for the batch, naming the requests
    that brought its messages and where each conversation went (docs/operations.md,
    "Following a mention")."""
    now = time.time()
    routed_latency.routed_record([max(now - at.timestamp(), 0.0) for at, _ in taken.values()])
    if not log.isEnabledFor(logging.INFO):
        return
    by_request: dict[str, list[int]] = defaultdict(list)
    for message_id, (_, request_id) in taken.items():
        by_request[request_id].append(message_id)
    routed = [item for item in items if item.messages]
    log.info("routed %d messages of %d conversations", len(taken), len(routed), extra={
        "messages": dict(by_request),  # request id -> the message ids it brought
        # [conversation, queue, assignee, status] as committed
        "conversations": [[i.conversation.pk, i.conversation.queue_id, i.conversation.assignee_id,
                           str(i.conversation.status)] for i in routed]})


def _route_and_reply(pairs: list[tuple[int, list[int]]], cache: RoutingCache,
                     scores: dict[int, tuple] | None = None,
                     hints: RoutingHints | None = None) -> dict[int, Conversation]:
    items = _route_batch(pairs, cache, (scores_ahead(pairs) or {}) if scores is None else scores, hints)
    # auto-replies after the routing committed, each its own send; one failing does not undo the routing
    for item in items:
        if item.skipped:
            continue
        if item.auto_reply is not None:
            try:
                auto_reply_send(item.conversation, item.auto_reply)
            except Exception:  # noqa: BLE001
                log.warning("auto-reply on #%s failed", item.conversation.pk, exc_info=True)
    return {item.conversation.pk: item.conversation for item in items}


def _route_batch(pairs: list[tuple[int, list[int]]], cache: RoutingCache,
                 scores: dict[int, tuple], hints: RoutingHints | None = None) -> list[_Item]:
    now = timezone.now()
    wanted: dict[int, set[int]] = defaultdict(set)
    for conversation_id, message_ids in pairs:
        wanted[conversation_id].update(message_ids)
    trail = Trail()
    with transaction.atomic():
        commit_without_flush_wait()  # lost in a crash, the markers come back and the sweep routes again
        # conversations first, all in one statement in id order (two batches never wait on each other in a
        # cycle), then their routing state, then the agents (_assign_batch): the order every writer uses
        # a hinted conversation whose wanted messages are not all in the hint (a batch of another
        # ingest merged in from the pending list) is read back like any other
        usable = {c for c in wanted if hints is not None and c in hints.conversations
                  and wanted[c] <= {m.pk for m in hints.messages.get(c, ())}}
        conversations, fresh = _conversations_lock(list(wanted), hints, usable)
        if not conversations:
            return []
        ids = [c.pk for c in conversations]
        for conversation in conversations:
            conversation.channel_account = cache.channel_account(conversation.channel_account_id)
            if conversation.queue_id in cache.queues:
                conversation.queue = cache.queues[conversation.queue_id]
        by_conversation: dict[int, list[Message]] = defaultdict(list)
        done_before: set[int] = set()
        # a message with no marker left was routed and committed: by a task that took this batch from the
        # pending list, or a redelivered task. A message is routed once.
        read = [c.pk for c in conversations if c.pk not in fresh]
        messages = [m for m in Message.objects.filter(pk__any=set().union(*(wanted[c] for c in read)),
                                                      conversation_id__any=read, direction=Message.Direction.INBOUND)
                    .only(*MESSAGE_FIELDS) if m.pk in wanted[m.conversation_id]] if read else []
        messages += [m for c in fresh for m in hints.messages.get(c, ()) if m.pk in wanted[c]]
        messages.sort(key=lambda m: (m.sent_at, m.pk))
        taken = unrouted_take(m.pk for m in messages)
        for message in messages:
            if message.pk in taken:
                by_conversation[message.conversation_id].append(message)
            else:
                done_before.add(message.conversation_id)
        skipped = [c for c in conversations if c.pk in done_before and not by_conversation[c.pk]]
        if skipped:
            conversations = [c for c in conversations if c not in skipped]
            ids = [c.pk for c in conversations]
            if not conversations:
                return [_Item(c, [], None, skipped=True) for c in skipped]
        # stored before ingest scored messages: scored now (the only message UPDATE routing can make)
        messages_analyze(messages=[m for c in conversations for m in by_conversation[c.pk] if not m.sentiment_label],
                         scores=scores)
        states = _states_lock(ids)
        # each step in the order given (ingest: arrival order), as if each were routed alone in turn
        order = {conversation_id: n for n, conversation_id in enumerate(wanted)}
        items = sorted((_Item(c, by_conversation[c.pk], states[c.pk], state_is_new=states[c.pk]._state.adding,
                              status_before=c.status) for c in conversations),
                       key=lambda item: order[item.conversation.pk])
        waiting = waiting_since_many(c.pk for c in conversations
                                      if c.status not in DONE_STATUSES and not c.is_spam)
        for item in items:
            _evaluate(item, cache, now, waiting, trail)
        _tags_add(items)
        # the events of rules, priority and SLA before any assignment: the reports hook sees
        # each conversation as the per-conversation path showed it
        trail.write_events()
        # the routing state does not depend on who is assigned: written before the agents are
        # locked, so the part every router of a team waits on is as short as can be
        for item in items:
            item.conversation.updated_at = item.state.updated_at = now
        rows_insert(item.state for item in items if item.state_is_new)
        rows_update([item.state for item in items if not item.state_is_new], STATE_FIELDS)
        _assign_batch([item for item in items if item.assign], items, now, trail)
        for item in items:
            if item.pushed:
                trail.push("conversation_updated", item.conversation.pk)
        rows_update(conversations, ROUTED_FIELDS)
        trail.write()
        transaction.on_commit(lambda: _routed_after_commit(taken, items), robust=True)
    return items + [_Item(c, [], None, skipped=True) for c in skipped]


def _conversations_lock(ids: list[int], hints: RoutingHints | None,
                        usable: set[int]) -> tuple[list[Conversation], set[int]]:
    """The batch's conversations, row-locked in one statement in id order, with their
    identity and customer; and the ids of those taken from `hints` (of `usable`: not
    read back, as the row is the version the hinting ingest transaction wrote)."""
    fresh: set[int] = set()
    if usable and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, xmin::text FROM {Conversation._meta.db_table} WHERE id = ANY(%s) "
                           "ORDER BY id FOR NO KEY UPDATE", [sorted(ids)])
            versions = cursor.fetchall()
        fresh = {pk for pk, xmin in versions if xmin == hints.xmin and pk in usable}
        ids = [pk for pk, _ in versions]  # gone ones dropped
    rest = [i for i in ids if i not in fresh]
    conversations = list(
        Conversation.objects.select_for_update(of=("self",), no_key=True).select_related("identity", "customer")
        .filter(pk__any=rest).order_by("pk")) if rest else []
    if fresh:
        taken = [hints.conversations[pk] for pk in fresh]
        customers = {c.pk: c for c in Customer.objects.filter(pk__any={c.customer_id for c in taken})}
        for conversation in taken:
            conversation.customer = customers[conversation.customer_id]
        conversations = sorted(conversations + taken, key=lambda c: c.pk)
    return conversations, fresh


def _states_lock(conversation_ids: list[int]) -> dict[int, ConversationRouting]:
    """The routing state rows, locked; a conversation routed for the first time
    gets a new one, inserted at the end with its values (under the
    conversation's row lock: no one else creates it meanwhile)."""
    states = {s.conversation_id: s for s in ConversationRouting.objects.select_for_update()
              .filter(conversation_id__any=conversation_ids).order_by("conversation_id")}
    for conversation_id in conversation_ids:
        if conversation_id not in states:
            states[conversation_id] = ConversationRouting(conversation_id=conversation_id)
    return states


def _evaluate(item: _Item, cache: RoutingCache, now: dt.datetime, waiting: dict[int, dt.datetime],
              trail: Trail) -> None:
    """Sentiment and language, rules (new cycle), priority and SLA, in memory."""
    conversation, messages, state = item.conversation, item.messages, item.state
    scored = [m for m in messages if m.sentiment is not None]
    if scored:
        if conversation.first_sentiment is None:
            conversation.first_sentiment = scored[0].sentiment
        conversation.last_sentiment = scored[-1].sentiment
    if messages and not conversation.language:
        conversation.language = next((m.language for m in messages if m.language), "")
    if conversation.status in DONE_STATUSES or conversation.is_spam:
        return

    cycle = conversation.cycle_started_at or conversation.created_at
    new_cycle = state.rules_cycle_at != cycle
    item.reopened = new_cycle and state.rules_cycle_at is not None
    inputs = PriorityInputs.from_json(state.inputs) if not new_cycle else PriorityInputs()
    outcome = item.outcome
    if new_cycle:
        state.rules_cycle_at, state.breached_targets, state.bucket_set, state.reasons = cycle, [], None, []
        ctx = _rule_context(conversation, messages, cache)
        outcome = item.outcome = rules_run(conversation, ctx, cache, trail)
        inputs = replace(inputs, rule_boost=outcome.boost, bucket_override=outcome.bucket,
                         rule_name=outcome.rule_name)
        _queue_set(conversation, outcome, cache, trail)
        if outcome.disposition:
            _disposition_apply(conversation, state, outcome.disposition, trail)
            item.pushed = True
            return

    # priority: the cycle's urgency terms add up; sentiment is the latest customer mood
    urgency = dict(inputs.urgency)
    for message in messages:
        for kind, term in urgency_terms(message.text).items():
            urgency.setdefault(kind, term)
    state.waiting_since = waiting.get(conversation.pk)
    identity = conversation.identity
    inputs = replace(
        inputs, sentiment=conversation.last_sentiment, urgency=urgency, followers=identity.followers_count,
        verified=identity.verified, vip=conversation.customer.tier == "vip", is_public=conversation.is_public,
        waiting_minutes=minutes_since(state.waiting_since, now),
    )
    priority_apply(conversation, state, inputs, trail, why="new message" if not new_cycle else "routed")
    sla_apply(conversation, state, now, trail, cache=cache)
    item.assign = conversation.assignee_id is None
    item.pushed = True
    item.auto_reply = outcome.auto_reply


def _tags_add(items: list[_Item]) -> None:
    """The rules' tags for the whole batch: missing tags created, links added (never twice)."""
    wanted = [(item.conversation.pk, name) for item in items for name in item.outcome.tags]
    if not wanted:
        return
    names = sorted({name for _, name in wanted})
    Tag.objects.bulk_create([Tag(name=name) for name in names], ignore_conflicts=True)
    tag_ids = dict(Tag.objects.filter(name__in=names).values_list("name", "pk"))
    link = Conversation.tags.through
    link.objects.bulk_create([link(conversation_id=cid, tag_id=tag_ids[name]) for cid, name in wanted],
                             ignore_conflicts=True)


def _rule_context(conversation: Conversation, messages: list[Message], cache: RoutingCache) -> RuleContext:
    last_scored = next((m for m in reversed(messages) if m.sentiment_label), None)
    queue = conversation.queue if conversation.queue_id else cache.default_queue

    def inside_hours(team_id):
        # the rule's team, else the team of the queue the conversation is in (or will default to)
        calendar = cache.calendar(team_id or (queue.team_id if queue else None))
        return True if calendar is None else calendar.is_open(timezone.now())

    customer = conversation.customer
    tags = customer.tags if isinstance(customer.tags, list) else []
    return RuleContext(
        text="\n".join(m.text for m in messages) or conversation.subject,
        channel=conversation.channel_account.provider, channel_account_id=conversation.channel_account_id,
        language=conversation.language or (messages[0].language if messages else ""),
        sentiment_label=last_scored.sentiment_label if last_scored else "not_scored",
        followers=conversation.identity.followers_count, customer_tags=frozenset(str(t) for t in tags),
        customer_tier=customer.tier, is_public=conversation.is_public, inside_hours=inside_hours,
    )


def _queue_set(conversation: Conversation, outcome: RuleOutcome, cache: RoutingCache, trail: Trail) -> None:
    queue = outcome.queue
    if queue is None and outcome.team is not None:
        queue = cache.team_queue(outcome.team)
    if queue is not None:
        if conversation.queue_id != queue.pk:
            conversation.queue = queue
        return
    if conversation.queue_id is None:
        default = cache.default_queue
        conversation.queue = default
        why = ["no rule chose a queue"] if default else ["no rule chose a queue; no default queue"]
        trail.event(conversation, "routed", rule_id=None, rule=None, why=why,
                    actions=[f"queue {default.name}"] if default else [],
                    reason=f"default queue {default.name}" if default else why[0])


def _disposition_apply(conversation: Conversation, state: ConversationRouting, disposition: str,
                       trail: Trail) -> None:
    old = conversation.status
    conversation.status = Status.CLOSED
    conversation.is_spam = disposition == "spam"
    for name in SLA_FIELDS[:4]:
        setattr(conversation, name, None)
    state.sla_next_check_at = None
    trail.event(conversation, "status_changed", old=old, new=Status.CLOSED,
                reason="spam (routing rule)" if conversation.is_spam else "ignored (routing rule)")


def _assign_batch(items: list[_Item], batch: list[_Item], now: dt.datetime, trail: Trail) -> None:
    """Auto-assignment for the conversations of a batch left without an agent:
    the agents of all their teams (and those named by rules or returning to a
    reopened conversation) locked in one statement, their loads counted once,
    then each conversation in turn as if routed alone: a rule's agent, else
    the last agent of a reopened conversation if online with room, else the
    queue's mode among the team's online agents with room."""
    if not items:
        return
    plans = []
    team_ids, agent_ids, queue_ids = set(), set(), set()
    for item in items:
        conversation, outcome = item.conversation, item.outcome
        queue = conversation.queue
        team_id = outcome.team.pk if outcome.team else (queue.team_id if queue else None)
        mode = (Queue.AssignmentMode.LEAST_LOADED if outcome.team else
                (queue.assignment_mode if queue else Queue.AssignmentMode.MANUAL))
        wants_team = outcome.team is not None or mode != Queue.AssignmentMode.MANUAL
        last_id = conversation.last_assignee_id if item.reopened else None
        plans.append((item, queue, team_id, mode, wants_team, last_id))
        if wants_team:
            team_ids.add(team_id)
            if not outcome.team and queue is not None:
                queue_ids.add(queue.pk)
        agent_ids.update(i for i in (outcome.agent.pk if outcome.agent else None, last_id) if i)
    locked = agents_lock(team_ids=team_ids, ids=agent_ids)
    loads = agent_loads(locked)
    for other in batch:
        # not written yet: a conversation of the batch a rule just closed no longer counts for its agent
        conversation = other.conversation
        if (conversation.assignee_id in locked and other.status_before in OPEN_STATUSES
                and conversation.status not in OPEN_STATUSES):
            loads.add(conversation.assignee_id, conversation.channel_account.provider, -1)
    last = last_assigned(queue_ids, locked)
    pickers: dict[tuple, AgentPicker] = {}
    turn = 0
    for item, queue, team_id, mode, wants_team, last_id in plans:
        conversation, outcome = item.conversation, item.outcome
        provider = conversation.channel_account.provider
        if outcome.agent is not None and outcome.agent.pk in locked:
            # a supervisor's rule names the agent: their explicit choice, even if busy
            agent = locked[outcome.agent.pk]
            assignment_apply(conversation, agent, trail, by="rule", reason="routing rule")
            loads.add(agent.pk, provider)
            continue
        if last_id is not None and last_id in locked:
            agent = locked[last_id]
            if agent_is_available(agent) and has_room(agent, loads, provider):
                assignment_apply(conversation, agent, trail, by="last_assignee", reason="reopened: back to the last agent")
                loads.add(agent.pk, provider)
                continue
        if not wants_team:
            continue
        picker_queue = queue if not outcome.team else None
        key = (team_id, picker_queue.pk if picker_queue else None, mode)
        if key not in pickers:
            pickers[key] = AgentPicker(team_candidates(locked, team_id), picker_queue, mode, loads=loads,
                                   last=last.get(picker_queue.pk, {}) if picker_queue else {})
        picker = pickers[key]
        agent = picker.pick(provider)
        if agent is None:
            trail.event(conversation, "queued", queue=queue.name if queue else None,
                        reason="no online agent with free capacity; waits in the queue")
            continue
        # each turn a moment later than the one before, as if each conversation were routed alone
        picker.took(agent, provider, now + dt.timedelta(microseconds=turn))
        turn += 1
        assignment_apply(conversation, agent, trail, by="rule" if outcome.team else mode,
                reason=f"team {outcome.team.name}" if outcome.team else
                f"{Queue.AssignmentMode(mode).label.lower()} in {queue.name}")
    for picker in pickers.values():
        picker.save()
