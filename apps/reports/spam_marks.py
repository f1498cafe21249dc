"""Spam in the rollups: a conversation marked spam counts in no metric while the mark stands,
whatever the order of its facts and the mark (docs/reports.md, "Spam"). The applier asks which
of a batch's events count, and which held ones a mark takes out or an unmark puts back."""
from __future__ import annotations

from django.db.models import Q

from .metrics import SPAM_MARKS
from .models import MetricEvent

# --- spam: out of every metric while marked -----------------------------------------

def applied_q(batch_ids) -> Q:
    """Events the rollups hold once this batch is applied: those applied before and the batch's."""
    return Q(rolled_up=True) | Q(pk__in=list(batch_ids))


def spam_conversations(conversation_ids, *, applied: Q = Q(rolled_up=True)) -> set[int]:
    """The conversations whose last applied mark (in `applied`) is "spam"."""
    last: dict[int, str] = {}
    if conversation_ids:
        for conversation_id, kind in (MetricEvent.objects.filter(applied, kind__in=SPAM_MARKS,
                                                                 conversation_id__in=list(conversation_ids))
                                      .order_by("id").values_list("conversation_id", "kind")):
            last[conversation_id] = kind
    return {c for c, kind in last.items() if kind == SPAM_MARKS[0]}


def spam_filter(events: list[MetricEvent]) -> tuple[list[tuple[MetricEvent, int]], set[int], set[int]]:
    """What a batch of events changes, spam considered, as (event, +1 or -1): an event of a
    conversation marked spam counts nothing; a "spam" mark takes away every event of its
    conversation the rollups hold, an "unspam" mark puts them all back. So the figures do
    not depend on the order of a fact and the mark (a breach before or after it, a message
    read before it). Returns that list, the conversations marked or unmarked in the batch
    and the conversations spam after it."""
    spam = spam_conversations({e.conversation_id for e in events if e.conversation_id})
    batch_ids, marked, effective = [], set(), []
    for e in events:
        conversation_id = e.conversation_id
        if e.kind in SPAM_MARKS:
            to_spam = e.kind == SPAM_MARKS[0]
            if conversation_id and to_spam != (conversation_id in spam):
                held = (MetricEvent.objects.filter(applied_q(batch_ids), conversation_id=conversation_id)
                        .exclude(kind__in=SPAM_MARKS).order_by("id"))
                effective += [(x, -1 if to_spam else 1) for x in held]
                marked.add(conversation_id)
                (spam.add if to_spam else spam.discard)(conversation_id)
        elif not conversation_id or conversation_id not in spam:
            effective.append((e, 1))
        batch_ids.append(e.pk)
    return effective, marked, spam
