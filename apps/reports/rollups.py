"""Rollups: metric events applied to the tables reports read (hour/day MetricRollup, the
one-dimension day/week MetricSlice, TermRollup and the conversation and customer facts), in
order, each event once (the reports.apply_rollups task; manage.py reports_rebuild redoes them
all from the events)."""
from __future__ import annotations

import bisect
import datetime as dt
import itertools
import logging
from collections import defaultdict
from collections.abc import Callable

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.db import rows_insert, rows_update

from . import metrics, themes
from .metrics import (CHANNEL_ACCOUNT, CHANNEL_ACCOUNT_METRICS, HOUR_SLICE_FILTERS, SPAM_MARKS, VALUE_METRICS,
                      examples_merge)
from .models import (ConversationFact, CustomerFact, Grain, MetricEvent, MetricRollup, MetricSlice, RollupLock,
                     SliceGrain, TermRollup, new_cache_epoch)
from .repeat_contacts import repeat_contact_increments
from .spam_marks import applied_q, spam_conversations, spam_filter

log = logging.getLogger(__name__)


def _increments(event: MetricEvent) -> list[tuple[str, float | None]]:
    kind, value = event.kind, event.value
    if kind in SPAM_MARKS or kind == "repeat_contact":
        # marks are no metric; repeat contacts are derived from messages (repeat_contact_increments),
        # events of that kind written before are not counted
        return []
    if kind == "undismissed":
        return [("dismissed", None, -1)]
    out: list = [(kind, value if kind in VALUE_METRICS else None)]
    if kind == "msg_in" and value is not None:
        out += [("sentiment", value), (f"msg_in_{metrics.sentiment_label(value)}", None)]
    if kind in ("first_response", "reply", "resolved", "first_response_conv", "resolution_full") \
            and event.value_bh is not None:
        out.append((f"{kind}_bh", event.value_bh))
    if kind in ("sla_met", "sla_breached"):
        out.append((f"{kind}:{event.data.get('target', 'sla')}", None))
    # sign -1: a fact taken back (a resolve that was not the final one, spam unmarked): its count,
    # sum and value come out of the rows it went into (services._final_resolution_undo)
    sign = -1 if event.data.get("sign") == -1 else 1
    return [(m, v, sign) for m, v in out]


def _signed_increments(effective: list[tuple[MetricEvent, int]]):
    """(event, metric, value, delta) of each event, taken away when its sign is -1."""
    for e, sign in effective:
        for metric, value, delta in _increments(e):
            yield e, metric, value, delta * sign


def _values_change(values: list, adds: list, removes: list) -> list:
    """A sorted list of values with `adds` put in and `removes` taken out (each once, the
    nearest value: a float read back from JSON)."""
    out = sorted([*values, *adds])
    for v in removes:
        i = bisect.bisect_left(out, v)
        near = [j for j in (i - 1, i) if 0 <= j < len(out)]
        if near:
            out.pop(min(near, key=lambda j: abs(out[j] - v)))
    return out


def _sort_key(event: MetricEvent) -> str:
    return f"{event.occurred_at.astimezone(dt.timezone.utc):%Y%m%d%H%M%S%f}|{event.pk:012d}"


def _buckets(moment: dt.datetime, grains=None) -> list[tuple[str, dt.datetime]]:
    """The rollup buckets an event at `moment` adds to (`grains`: only those; a backfill)."""
    out = [(Grain.HOUR, metrics.floor_hour(moment)), (Grain.QUARTER, metrics.floor_quarter(moment)),
           (Grain.DAY, metrics.floor_day(moment))]
    return [b for b in out if grains is None or b[0] in grains]


def _apply_metric_rows(increments, grains=None) -> None:
    """(event, metric, value, delta) into the hour, quarter-hour and day rows and the slices: a
    delta of -1 takes a count, its value and the value itself out again; a row left at 0 is
    deleted. `grains`: only those (a backfill)."""
    acc: dict[tuple, list] = {}
    for e, metric, value, delta in increments:
        for grain, bucket in _buckets(e.occurred_at, grains):
            key = (grain, bucket, metric, e.channel, e.account_id, e.queue_id, e.team_id, e.agent_id)
            row = acc.setdefault(key, [0, 0.0, [], []])  # count, total, values added, values taken out
            row[0] += delta
            if value is not None:
                row[1] += value if delta > 0 else -value
                if metric in VALUE_METRICS:
                    row[2 if delta > 0 else 3].append(value)
    if not acc:
        return
    existing = {
        (r.grain, r.bucket, r.metric, r.channel, r.account_id, r.queue_id, r.team_id, r.agent_id): r
        for r in MetricRollup.objects.filter(bucket__in={k[1] for k in acc}, metric__in={k[2] for k in acc})
    }
    new, changed, gone = [], [], []
    for key, (count, total, values, removes) in acc.items():
        row = existing.get(key)
        if row is None:
            if not count:
                continue  # counted and taken out again in this batch
            row = MetricRollup(grain=key[0], bucket=key[1], metric=key[2], channel=key[3], account_id=key[4],
                               queue_id=key[5], team_id=key[6], agent_id=key[7])
            new.append(row)
        elif row.count + count == 0:
            gone.append(row.pk)
            continue
        else:
            changed.append(row)
        row.count += count
        row.total += total
        if values or removes:
            row.values = _values_change(row.values, values, removes)
    rows_insert(new)
    rows_update(changed, ["count", "total", "values"], batch_size=500)
    MetricRollup.objects.filter(pk__in=gone).delete()
    _apply_slices(acc)


SLICE_DIMS = (("channel", 3), ("account", 4), ("queue", 5), ("team", 6), ("agent", 7))


def channel_account_key(channel: str, account_id) -> str:
    return f"{channel}|{account_id}"


def _slice_keys(key: tuple):
    """The slice rows a day rollup row adds to, as (grain, fdim, fkey, dim, key): unfiltered,
    by day and week, along each dimension; filtered by each dimension's value (the filter
    slices), by day and week in total and by week along each other dimension."""
    cells = [(dim, str(key[index])) for dim, index in SLICE_DIMS]
    for grain in (SliceGrain.DAY, SliceGrain.WEEK):
        yield grain, "", "", "", ""
        for dim, value in cells:
            yield grain, "", "", dim, value
            yield grain, dim, value, "", ""
    for fdim, fkey in cells:
        for dim, value in cells:
            if dim != fdim:
                yield SliceGrain.WEEK, fdim, fkey, dim, value


def _apply_slices(acc: dict) -> None:
    """Adds the day increments to the slices (MetricSlice): one dimension at a time, day and
    week, and the filter slices (see _slice_keys); the hour increments to the hour slices,
    the quarter-hour ones to the quarter slices (the same rows, a quarter of an hour each)."""
    slices: dict[tuple, list] = {}
    for key, (count, total, values, removes) in acc.items():
        if key[0] in (Grain.HOUR, Grain.QUARTER):
            cells = dict((dim, str(key[index])) for dim, index in SLICE_DIMS)
            views = [("", "")]
            if key[2] in CHANNEL_ACCOUNT_METRICS:
                views.append((CHANNEL_ACCOUNT, channel_account_key(key[3], key[4])))
            for fdim in HOUR_SLICE_FILTERS:
                for dim, value in views:
                    row = slices.setdefault((SliceGrain(key[0]), key[1], key[2], fdim, cells.get(fdim, ""), dim,
                                             value), [0, 0.0, [], []])
                    row[0] += count
                    row[1] += total
                    row[2].extend(values)
                    row[3].extend(removes)
            continue
        week = metrics.floor_week(key[1])
        for grain, fdim, fkey, dim, value in _slice_keys(key):
            skey = (grain, key[1] if grain == SliceGrain.DAY else week, key[2], fdim, fkey, dim, value)
            row = slices.setdefault(skey, [0, 0.0, [], []])
            row[0] += count
            row[1] += total
            row[2].extend(values)
            row[3].extend(removes)
    if not slices:
        return
    buckets = Q(pk__in=[])
    for grain in SliceGrain:
        buckets |= Q(grain=grain, bucket__in={k[1] for k in slices if k[0] == grain})
    existing = {(r.grain, r.bucket, r.metric, r.fdim, r.fkey, r.dim, r.key): r for r in MetricSlice.objects.filter(
        buckets, metric__in={k[2] for k in slices})}
    new, changed, gone = [], [], []
    for skey, (count, total, values, removes) in slices.items():
        row = existing.get(skey)
        if row is None:
            if not count:
                continue
            row = MetricSlice(grain=skey[0], bucket=skey[1], metric=skey[2], fdim=skey[3], fkey=skey[4], dim=skey[5],
                              key=skey[6])
            new.append(row)
        elif row.count + count == 0:
            gone.append(row.pk)
            continue
        else:
            changed.append(row)
        complete = row.count <= metrics.EXACT_MAX  # a row this small holds all its values
        row.count += count
        row.total += total
        if values or removes:
            hist = dict(row.hist)
            for v, step in [*((v, 1) for v in values), *((v, -1) for v in removes)]:
                b = str(metrics.hist_bin(v))
                hist[b] = hist.get(b, 0) + step
            row.hist = {b: n for b, n in hist.items() if n}
            # exact values only while small: beyond that the histogram answers
            if row.count > metrics.EXACT_MAX:
                row.values = []
            elif complete:
                row.values = _values_change(row.values, values, removes)
            else:  # small again after a spam mark took values out: its values from the full rows
                row.values = _slice_values_reload(row)
    rows_insert(new)
    rows_update(changed, ["count", "total", "values", "hist"], batch_size=500)
    MetricSlice.objects.filter(pk__in=gone).delete()


_ROLLUP_COLUMNS = {"channel": "channel", "account": "account_id", "queue": "queue_id", "team": "team_id",
                   "agent": "agent_id"}


def _slice_values_reload(row: MetricSlice) -> list:
    """A slice row's exact values, from the full rollup rows it sums (already updated)."""
    rows = MetricRollup.objects.filter(metric=row.metric)
    if row.grain in (SliceGrain.HOUR, SliceGrain.QUARTER):
        rows = rows.filter(grain=Grain(row.grain), bucket=row.bucket)
    elif row.grain == SliceGrain.DAY:
        rows = rows.filter(grain=Grain.DAY, bucket=row.bucket)
    else:
        rows = rows.filter(grain=Grain.DAY, bucket__gte=row.bucket, bucket__lt=row.bucket + dt.timedelta(days=7))
    for dim, key in ((row.fdim, row.fkey), (row.dim, row.key)):
        if dim == CHANNEL_ACCOUNT:
            channel, account_id = key.rsplit("|", 1)
            rows = rows.filter(channel=channel, account_id=int(account_id))
        elif dim:
            column = _ROLLUP_COLUMNS[dim]
            rows = rows.filter(**{column: key if column == "channel" else int(key)})
    return sorted(v for values in rows.values_list("values", flat=True) for v in values)


def _event_terms(e: MetricEvent) -> list[tuple[str, str]]:
    # is_hashtag: events recorded before digits-only tags were refused (a rebuild drops them too)
    terms = [("topic", t) for t in e.data.get("topics", [])]
    terms += [("hashtag", t) for t in e.data.get("hashtags", []) if themes.is_hashtag(t)]
    terms += [("keyword", t) for t in e.data.get("keywords", [])]
    return [(term_type, term[:64]) for term_type, term in terms]


def _example(e: MetricEvent) -> dict:
    return {"message_id": e.data.get("message_id", e.pk), "conversation_id": e.conversation_id,
            "sentiment": e.value, "text": e.data.get("excerpt", "")}


def _apply_term_rows(effective: list[tuple[MetricEvent, int]], batch_ids, grains=None) -> None:
    acc: dict[tuple, dict] = {}
    for e, sign in effective:
        if e.kind != "msg_in":
            continue
        label = metrics.sentiment_label(e.value)
        buckets = _buckets(e.occurred_at, grains)
        for (term_type, term), (grain, bucket) in itertools.product(_event_terms(e), buckets):
            key = (grain, bucket, e.channel, e.account_id, term_type, term)
            row = acc.setdefault(key, {"count": 0, "positive": 0, "negative": 0, "neutral": 0, "total": 0.0,
                                       "examples": {}})
            row["count"] += sign
            if label in ("positive", "negative", "neutral"):
                row[label] += sign
                row["total"] += e.value * sign
                if label != "neutral":
                    example = _example(e)
                    net = row["examples"].setdefault(example["message_id"], [0, example])
                    net[0] += sign
    if not acc:
        return
    existing = {(r.grain, r.bucket, r.channel, r.account_id, r.term_type, r.term): r
                for r in TermRollup.objects.filter(bucket__in={k[1] for k in acc}, term__in={k[5] for k in acc})}
    new, changed, gone, short = [], [], [], []
    for key, inc in acc.items():
        row = existing.get(key)
        if row is None:
            if not inc["count"]:
                continue
            row = TermRollup(grain=key[0], bucket=key[1], channel=key[2], account_id=key[3], term_type=key[4],
                             term=key[5])
            new.append(row)
        elif row.count + inc["count"] == 0:
            gone.append(row.pk)
            continue
        else:
            changed.append(row)
        for f in ("count", "positive", "negative", "neutral", "total"):
            setattr(row, f, getattr(row, f) + inc[f])
        taken = {m for m, (net, _) in inc["examples"].items() if net < 0}
        kept = [x for x in row.examples if x["message_id"] not in taken]
        if len(kept) < len(row.examples):
            short.append(row)  # an example left with a spam mark: the next best take its place
        row.examples = examples_merge(kept, [x for net, x in inc["examples"].values() if net > 0])
    if short:
        _term_examples_refill(short, batch_ids)
    rows_insert(new)
    rows_update(changed, ["count", "positive", "negative", "neutral", "total", "examples"], batch_size=500)
    TermRollup.objects.filter(pk__in=gone).delete()


def _term_examples_refill(rows: list[TermRollup], batch_ids) -> None:
    """The examples of term rows a spam mark took some from, again from the messages they
    count (outside spam): the same as if the spam had never been counted."""
    groups = defaultdict(list)
    for row in rows:
        groups[(row.grain, row.bucket, row.channel, row.account_id)].append(row)
    applied = applied_q(batch_ids)
    for (grain, bucket, channel, account_id), members in groups.items():
        span = {Grain.HOUR: dt.timedelta(hours=1), Grain.QUARTER: dt.timedelta(minutes=15)}.get(
            grain, dt.timedelta(days=1))
        events = list(MetricEvent.objects.filter(applied, kind="msg_in", channel=channel, account_id=account_id,
                                                 occurred_at__gte=bucket, occurred_at__lt=bucket + span))
        spam = spam_conversations({e.conversation_id for e in events}, applied=applied)
        pool = defaultdict(list)
        for e in events:
            if e.conversation_id not in spam and metrics.sentiment_label(e.value) in ("positive", "negative"):
                for term in _event_terms(e):
                    pool[term].append(_example(e))
        for row in members:
            row.examples = examples_merge([], pool.get((row.term_type, row.term), []))


def _apply_facts(events: list[MetricEvent], *, customers_skip=frozenset()) -> None:
    """Folds events into per-conversation and per-customer facts. Every update
    is a sum, min, max or union, so the order events arrive in does not matter.
    `customers_skip`: customers whose fact is refolded whole (_facts_refold)."""
    conv_ids = {e.conversation_id for e in events if e.conversation_id}
    facts = {f.conversation_id: f for f in ConversationFact.objects.filter(conversation_id__in=conv_ids)}
    new_facts = {}
    for e in events:
        if not e.conversation_id:
            continue
        fact = facts.get(e.conversation_id)
        if fact is None:
            fact = facts[e.conversation_id] = new_facts[e.conversation_id] = ConversationFact(
                conversation_id=e.conversation_id, channel=e.channel, account_id=e.account_id,
                queue_id=e.queue_id, team_id=e.team_id, agent_id=e.agent_id, customer_id=e.customer_id)
        key = _sort_key(e)
        if e.kind in ("opened", "reopened"):
            if e.kind == "reopened":
                fact.reopens += 1
            if fact.opened_at is None or e.occurred_at < fact.opened_at:
                fact.opened_at = e.occurred_at
        elif e.kind == "resolved":
            fact.resolutions += 1
            if key > fact.dims_key:
                fact.dims_key = key
                fact.last_resolved_at = e.occurred_at
                fact.queue_id, fact.team_id, fact.agent_id = e.queue_id, e.team_id, e.agent_id
                fact.tags = e.data.get("tags", [])
        elif e.kind == "first_response" and e.cycle >= fact.first_response_cycle:
            fact.first_response_cycle, fact.first_response_seconds = e.cycle, e.value
        elif e.kind == "sla_met":
            fact.sla_met += 1
        elif e.kind == "sla_breached":
            fact.sla_breached += 1
        elif e.kind == "csat" and key > fact.csat_key:
            fact.csat_key, fact.csat = key, int(e.value)
        elif e.kind == "msg_in":
            fact.inbound += 1
            fact.topics = sorted(set(fact.topics) | set(e.data.get("topics", [])))
            if e.value is not None:
                if not fact.first_sentiment_key or key < fact.first_sentiment_key:
                    fact.first_sentiment_key, fact.first_sentiment = key, e.value
                if key > fact.last_sentiment_key:
                    fact.last_sentiment_key, fact.last_sentiment = key, e.value
    rows_insert(new_facts.values())
    fields = [f.name for f in ConversationFact._meta.fields if not f.primary_key]
    rows_update([f for k, f in facts.items() if k not in new_facts], fields, batch_size=500)
    _fold_customers([e for e in events if e.kind == "msg_in" and e.customer_id and e.conversation_id
                     and e.customer_id not in customers_skip])


def _fold_customers(events: list[MetricEvent]) -> None:
    """The customers' facts (at risk: recent sentiment, churn words, last contact) from their messages."""
    cust_ids = {e.customer_id for e in events}
    customers = {c.customer_id: c for c in CustomerFact.objects.filter(customer_id__in=cust_ids)}
    new_customers = {}
    for e in events:
        key = _sort_key(e)
        cust = customers.get(e.customer_id)
        if cust is None:
            cust = customers[e.customer_id] = new_customers[e.customer_id] = CustomerFact(
                customer_id=e.customer_id)
        cust.inbound += 1
        if e.value is not None:
            cust.recent = sorted([*cust.recent, [key, e.value]])[-10:]
        if e.data.get("churn"):
            cust.churn_hits += 1
            cust.churn_words = sorted(set(cust.churn_words) | set(e.data["churn"]))
        if cust.last_contact_at is None or e.occurred_at >= cust.last_contact_at:
            if cust.last_contact_at is None or e.occurred_at > cust.last_contact_at \
                    or e.conversation_id > cust.last_conversation_id:
                cust.last_conversation_id = e.conversation_id
            cust.last_contact_at = e.occurred_at
            cust.channel = e.channel
    rows_insert(new_customers.values())
    cfields = [f.name for f in CustomerFact._meta.fields if not f.primary_key]
    rows_update([c for k, c in customers.items() if k not in new_customers], cfields, batch_size=500)


def _facts_refold(marked: set[int], spam: set[int], batch_ids) -> set[int]:
    """The facts of conversations marked or unmarked spam in a batch, and of their customers,
    folded again from the events the rollups hold (none for a conversation that is spam).
    Returns those customers."""
    applied = applied_q(batch_ids)
    ConversationFact.objects.filter(conversation_id__in=list(marked)).delete()
    customers = set(MetricEvent.objects.filter(conversation_id__in=list(marked)).exclude(customer_id=0)
                    .values_list("customer_id", flat=True).distinct())
    _apply_facts(list(MetricEvent.objects.filter(applied, conversation_id__in=list(marked - spam))
                      .exclude(kind__in=SPAM_MARKS).order_by("id")), customers_skip=customers)
    CustomerFact.objects.filter(customer_id__in=list(customers)).delete()
    messages = list(MetricEvent.objects.filter(applied, customer_id__in=list(customers), kind="msg_in")
                    .exclude(conversation_id=0).order_by("id"))
    out = spam_conversations({m.conversation_id for m in messages}, applied=applied)
    _fold_customers([m for m in messages if m.conversation_id not in out])
    return customers


def rollups_apply(*, batch_size: int = 2000, max_batches: int = 50, pause: Callable[[], bool] | None = None) -> int:
    """Applies pending metric events to the rollups and facts, oldest first.
    One applier at a time (a locked row); each batch commits with its events
    marked, so a crash re-applies nothing and loses nothing. `pause`, asked between
    batches: True stops here (the rest waits for a later run: apps/reports/pacing.py)."""
    RollupLock.objects.get_or_create(pk=1)
    applied = 0
    for _ in range(max_batches):
        if pause is not None and pause():
            break
        with transaction.atomic():
            lock = RollupLock.objects.select_for_update().get(pk=1)
            events = list(MetricEvent.objects.filter(rolled_up=False).order_by("id")[:batch_size])
            if not events:
                break
            effective, marked, spam = spam_filter(events)
            batch_ids = [e.pk for e in events]
            _apply_metric_rows([*_signed_increments(effective), *repeat_contact_increments(events)])
            _apply_term_rows(effective, batch_ids)
            customers = _facts_refold(marked, spam, batch_ids) if marked else set()
            _apply_facts([e for e, sign in effective if sign > 0 and e.conversation_id not in marked
                          and e.kind not in SPAM_MARKS], customers_skip=customers)
            MetricEvent.objects.filter(pk__in=[e.pk for e in events]).update(rolled_up=True)
            lock.applied_total += len(events)
            lock.last_run_at = timezone.now()
            lock.save()
            applied += len(events)
    return applied


def quarter_rows_backfill(batch_size: int = 2000) -> int:
    """The quarter-hour rows (rollups, slices, terms) of the events already applied, built
    from the events: once, on a database whose rollups predate them (migration 0017). The
    applier and a rebuild write them along with the rest."""
    applied = 0
    with transaction.atomic():
        RollupLock.objects.get_or_create(pk=1)
        RollupLock.objects.select_for_update().get(pk=1)
        if MetricRollup.objects.filter(grain=Grain.QUARTER).exists():
            return 0
        last = 0
        while True:
            events = list(MetricEvent.objects.filter(rolled_up=True, pk__gt=last).order_by("pk")[:batch_size])
            if not events:
                break
            # what the rollups hold of them: spam conversations' events are out; repeat contacts
            # derived from the customers' messages, as the applier does
            spam = spam_conversations({e.conversation_id for e in events if e.conversation_id})
            effective = [(e, 1) for e in events if e.kind not in SPAM_MARKS and e.conversation_id not in spam]
            _apply_metric_rows([*_signed_increments(effective), *repeat_contact_increments(events, backfill=True)],
                               grains=(Grain.QUARTER,))
            _apply_term_rows(effective, [e.pk for e in events], grains=(Grain.QUARTER,))
            last = events[-1].pk
            applied += len(events)
        RollupLock.objects.filter(pk=1).update(cache_epoch=new_cache_epoch())
    return applied


def rollups_rebuild() -> int:
    """Drops every rollup and fact and re-applies all metric events."""
    with transaction.atomic():
        RollupLock.objects.get_or_create(pk=1)
        RollupLock.objects.select_for_update().get(pk=1)
        # cached reports (apps/reports/cache.py) of the data before the rebuild never match again
        RollupLock.objects.filter(pk=1).update(cache_epoch=new_cache_epoch())
        MetricRollup.objects.all().delete()
        MetricSlice.objects.all().delete()
        TermRollup.objects.all().delete()
        ConversationFact.objects.all().delete()
        CustomerFact.objects.all().delete()
        MetricEvent.objects.update(rolled_up=False)
    total = 0
    while True:
        n = rollups_apply(max_batches=1000)
        total += n
        if n == 0:
            return total
