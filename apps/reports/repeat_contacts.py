"""Repeat contacts, derived from the customers' messages and resolutions batch by batch (not
recorded as events): an agent's reopen is none, and the order of events does not matter
(docs/reports.md, "Repeat contact")."""
from __future__ import annotations

import bisect
from collections import defaultdict

from .metrics import REPEAT_WINDOW, SPAM_MARKS
from .models import MetricEvent
from .spam_marks import applied_q, spam_conversations


def repeat_contact_increments(events: list[MetricEvent], *, backfill: bool = False) -> list[tuple]:
    """A resolution is followed by a repeat contact when the same customer (any conversation,
    any channel) wrote again within REPEAT_WINDOW after it: a customer message ("msg_in"), so an
    agent's reopen is none. Neither the resolution's nor the message's conversation may be spam.
    Counted in the resolution's hour with its dimensions, each resolution at most once.

    Returns the changes this batch makes, as (resolution event, "repeat_contact", None, +1/-1):
    for every resolution a message, a resolution or a spam mark of the batch may concern, whether
    it was followed before the batch (the events applied) and after it (and the batch's)."""
    batch_ids = {e.pk for e in events}
    spans: dict[int, list] = {}

    def widen(customer_id, lo, hi):
        if customer_id:
            span = spans.setdefault(customer_id, [lo, hi])
            span[0], span[1] = min(span[0], lo), max(span[1], hi)

    for e in events:
        if e.kind == "msg_in":
            widen(e.customer_id, e.occurred_at - REPEAT_WINDOW, e.occurred_at)
        elif e.kind == "resolved":
            widen(e.customer_id, e.occurred_at, e.occurred_at)
    marked = {e.conversation_id for e in events if e.kind in SPAM_MARKS and e.conversation_id}
    marked_customers = set()
    if marked:
        for customer_id, kind, at in (MetricEvent.objects.filter(conversation_id__in=list(marked),
                                                                 kind__in=("msg_in", "resolved"))
                                      .values_list("customer_id", "kind", "occurred_at")):
            widen(customer_id, at - REPEAT_WINDOW if kind == "msg_in" else at, at)
            marked_customers.add(customer_id)
    if not spans:
        return []
    # the batch's customers together over the batch's span (minutes plus the window, usually);
    # a marked conversation's customers each over their own (an old conversation marked today)
    usual = [c for c in spans if c not in marked_customers]
    groups = [({c}, *spans[c]) for c in marked_customers if c in spans]
    if usual:
        groups.append((set(usual), min(spans[c][0] for c in usual), max(spans[c][1] for c in usual)))
    resolutions: dict[int, MetricEvent] = {}
    contacts: dict[int, tuple] = {}
    for customers, lo, hi in groups:
        for r in MetricEvent.objects.filter(customer_id__in=list(customers), kind="resolved", occurred_at__gte=lo,
                                            occurred_at__lte=hi):
            resolutions[r.pk] = r
        with_resolutions = [c for c in customers if any(r.customer_id == c for r in resolutions.values())]
        if with_resolutions:
            for row in (MetricEvent.objects.filter(customer_id__in=with_resolutions, kind="msg_in",
                                                   occurred_at__gt=lo, occurred_at__lte=hi + REPEAT_WINDOW)
                        .values_list("id", "customer_id", "conversation_id", "occurred_at", "rolled_up")):
                contacts[row[0]] = row
    if not resolutions:
        return []
    conversations = {r.conversation_id for r in resolutions.values()} | {row[2] for row in contacts.values()}
    spam_before = spam_conversations(conversations)
    spam_after = spam_conversations(conversations, applied=applied_q(batch_ids))

    def contact_times(after: bool) -> dict[int, list]:
        times = defaultdict(list)
        spam = spam_after if after else spam_before
        for pk, customer_id, conversation_id, at, rolled_up in contacts.values():
            if (rolled_up or (after and pk in batch_ids)) and conversation_id not in spam:
                times[customer_id].append(at)
        return {c: sorted(t) for c, t in times.items()}

    times_before, times_after = contact_times(False), contact_times(True)

    def followed(r: MetricEvent, after: bool) -> bool:
        held = r.rolled_up or (after and r.pk in batch_ids)
        if not held or r.conversation_id in (spam_after if after else spam_before):
            return False
        times = (times_after if after else times_before).get(r.customer_id, [])
        i = bisect.bisect_right(times, r.occurred_at)
        return i < len(times) and times[i] <= r.occurred_at + REPEAT_WINDOW

    out = []
    for r in resolutions.values():
        if backfill:  # rows built afresh from applied events: each resolution once, in its own batch
            if r.pk in batch_ids and followed(r, True):
                out.append((r, "repeat_contact", None, 1))
            continue
        delta = int(followed(r, True)) - int(followed(r, False))
        if delta:
            out.append((r, "repeat_contact", None, delta))
    return out
