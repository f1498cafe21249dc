"""Rollups: metric events applied to the tables reports read (hour/day MetricRollup, the
one-dimension day/week MetricSlice, TermRollup and the conversation and customer facts), in
order, each event once (the reports.apply_rollups task; manage.py reports_rebuild redoes them
all from the events)."""
from __future__ import annotations

import datetime as dt
import itertools
import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import metrics, themes
from .metrics import CHANNEL_ACCOUNT, CHANNEL_ACCOUNT_METRICS, HOUR_SLICE_FILTERS, VALUE_METRICS, examples_merge
from .models import (ConversationFact, CustomerFact, Grain, MetricEvent, MetricRollup, MetricSlice, RollupLock,
                     SliceGrain, TermRollup, new_cache_epoch)

log = logging.getLogger(__name__)


def _increments(event: MetricEvent) -> list[tuple[str, float | None]]:
    kind, value = event.kind, event.value
    if kind == "undismissed":
        return [("dismissed", None, -1)]
    out: list = [(kind, value if kind in VALUE_METRICS or kind == "repeat_contact" else None)]
    if kind == "msg_in" and value is not None:
        out += [("sentiment", value), (f"msg_in_{metrics.sentiment_label(value)}", None)]
    if kind in ("first_response", "reply", "resolved") and event.value_bh is not None:
        out.append((f"{kind}_bh", event.value_bh))
    if kind in ("sla_met", "sla_breached"):
        out.append((f"{kind}:{event.data.get('target', 'sla')}", None))
    return [(m, v, 1) for m, v in out]




def _sort_key(event: MetricEvent) -> str:
    return f"{event.occurred_at.astimezone(dt.timezone.utc):%Y%m%d%H%M%S%f}|{event.pk:012d}"


def _buckets(moment: dt.datetime, grains=None) -> list[tuple[str, dt.datetime]]:
    """The rollup buckets an event at `moment` adds to (`grains`: only those; a backfill)."""
    out = [(Grain.HOUR, metrics.floor_hour(moment)), (Grain.QUARTER, metrics.floor_quarter(moment)),
           (Grain.DAY, metrics.floor_day(moment))]
    return [b for b in out if grains is None or b[0] in grains]


def _apply_metric_rows(events: list[MetricEvent], grains=None) -> None:
    acc: dict[tuple, list] = {}
    for e in events:
        for grain, bucket in _buckets(e.occurred_at, grains):
            for metric, value, delta in _increments(e):
                key = (grain, bucket, metric, e.channel, e.account_id, e.queue_id, e.team_id, e.agent_id)
                row = acc.setdefault(key, [0, 0.0, []])
                row[0] += delta
                if value is not None:
                    row[1] += value
                    if metric in VALUE_METRICS:
                        row[2].append(value)
    if not acc:
        return
    existing = {
        (r.grain, r.bucket, r.metric, r.channel, r.account_id, r.queue_id, r.team_id, r.agent_id): r
        for r in MetricRollup.objects.filter(bucket__in={k[1] for k in acc}, metric__in={k[2] for k in acc})
    }
    new, changed = [], []
    for key, (count, total, values) in acc.items():
        row = existing.get(key)
        if row is None:
            row = MetricRollup(grain=key[0], bucket=key[1], metric=key[2], channel=key[3], account_id=key[4],
                               queue_id=key[5], team_id=key[6], agent_id=key[7])
            new.append(row)
        else:
            changed.append(row)
        row.count += count
        row.total += total
        if values:
            row.values = sorted([*row.values, *values])
    MetricRollup.objects.bulk_create(new, batch_size=500)
    MetricRollup.objects.bulk_update(changed, ["count", "total", "values"], batch_size=500)
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
    for key, (count, total, values) in acc.items():
        if key[0] in (Grain.HOUR, Grain.QUARTER):
            cells = dict((dim, str(key[index])) for dim, index in SLICE_DIMS)
            views = [("", "")]
            if key[2] in CHANNEL_ACCOUNT_METRICS:
                views.append((CHANNEL_ACCOUNT, channel_account_key(key[3], key[4])))
            for fdim in HOUR_SLICE_FILTERS:
                for dim, value in views:
                    row = slices.setdefault((SliceGrain(key[0]), key[1], key[2], fdim, cells.get(fdim, ""), dim,
                                             value), [0, 0.0, []])
                    row[0] += count
                    row[1] += total
                    row[2].extend(values)
            continue
        week = metrics.floor_week(key[1])
        for grain, fdim, fkey, dim, value in _slice_keys(key):
            skey = (grain, key[1] if grain == SliceGrain.DAY else week, key[2], fdim, fkey, dim, value)
            row = slices.setdefault(skey, [0, 0.0, []])
            row[0] += count
            row[1] += total
            row[2].extend(values)
    if not slices:
        return
    buckets = Q(pk__in=[])
    for grain in SliceGrain:
        buckets |= Q(grain=grain, bucket__in={k[1] for k in slices if k[0] == grain})
    existing = {(r.grain, r.bucket, r.metric, r.fdim, r.fkey, r.dim, r.key): r for r in MetricSlice.objects.filter(
        buckets, metric__in={k[2] for k in slices})}
    new, changed = [], []
    for skey, (count, total, values) in slices.items():
        row = existing.get(skey)
        if row is None:
            row = MetricSlice(grain=skey[0], bucket=skey[1], metric=skey[2], fdim=skey[3], fkey=skey[4], dim=skey[5],
                              key=skey[6])
            new.append(row)
        else:
            changed.append(row)
        row.count += count
        row.total += total
        if values:
            hist = dict(row.hist)
            for v in values:
                b = str(metrics.hist_bin(v))
                hist[b] = hist.get(b, 0) + 1
            row.hist = hist
            # exact values only while small: beyond that the histogram answers
            row.values = sorted([*row.values, *values]) if row.count <= metrics.EXACT_MAX else []
    MetricSlice.objects.bulk_create(new, batch_size=500)
    MetricSlice.objects.bulk_update(changed, ["count", "total", "values", "hist"], batch_size=500)


def _apply_term_rows(events: list[MetricEvent], grains=None) -> None:
    acc: dict[tuple, dict] = {}
    for e in events:
        if e.kind != "msg_in":
            continue
        label = metrics.sentiment_label(e.value)
        # is_hashtag: events recorded before digits-only tags were refused (a rebuild drops them too)
        terms = [("topic", t) for t in e.data.get("topics", [])]
        terms += [("hashtag", t) for t in e.data.get("hashtags", []) if themes.is_hashtag(t)]
        terms += [("keyword", t) for t in e.data.get("keywords", [])]
        buckets = _buckets(e.occurred_at, grains)
        for (term_type, term), (grain, bucket) in itertools.product(terms, buckets):
            key = (grain, bucket, e.channel, e.account_id, term_type, term[:64])
            row = acc.setdefault(key, {"count": 0, "positive": 0, "negative": 0, "neutral": 0, "total": 0.0,
                                       "examples": []})
            row["count"] += 1
            if label in ("positive", "negative", "neutral"):
                row[label] += 1
                row["total"] += e.value
                if label != "neutral":
                    row["examples"] = examples_merge(row["examples"], [{
                        "message_id": e.data.get("message_id", e.pk), "conversation_id": e.conversation_id,
                        "sentiment": e.value, "text": e.data.get("excerpt", "")}])
    if not acc:
        return
    existing = {(r.grain, r.bucket, r.channel, r.account_id, r.term_type, r.term): r
                for r in TermRollup.objects.filter(bucket__in={k[1] for k in acc}, term__in={k[5] for k in acc})}
    new, changed = [], []
    for key, inc in acc.items():
        row = existing.get(key)
        if row is None:
            row = TermRollup(grain=key[0], bucket=key[1], channel=key[2], account_id=key[3], term_type=key[4],
                             term=key[5])
            new.append(row)
        else:
            changed.append(row)
        for f in ("count", "positive", "negative", "neutral", "total"):
            setattr(row, f, getattr(row, f) + inc[f])
        row.examples = examples_merge(row.examples, inc["examples"])
    TermRollup.objects.bulk_create(new, batch_size=500)
    TermRollup.objects.bulk_update(changed, ["count", "positive", "negative", "neutral", "total", "examples"],
                                   batch_size=500)


def _apply_facts(events: list[MetricEvent]) -> None:
    """Folds events into per-conversation and per-customer facts. Every update
    is a sum, min, max or union, so the order events arrive in does not matter."""
    conv_ids = {e.conversation_id for e in events if e.conversation_id}
    facts = {f.conversation_id: f for f in ConversationFact.objects.filter(conversation_id__in=conv_ids)}
    cust_ids = {e.customer_id for e in events if e.kind == "msg_in" and e.customer_id}
    customers = {c.customer_id: c for c in CustomerFact.objects.filter(customer_id__in=cust_ids)}
    new_facts, new_customers = {}, {}
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
    ConversationFact.objects.bulk_create(new_facts.values(), batch_size=500)
    fields = [f.name for f in ConversationFact._meta.fields if not f.primary_key]
    ConversationFact.objects.bulk_update([f for k, f in facts.items() if k not in new_facts], fields, batch_size=500)
    CustomerFact.objects.bulk_create(new_customers.values(), batch_size=500)
    cfields = [f.name for f in CustomerFact._meta.fields if not f.primary_key]
    CustomerFact.objects.bulk_update([c for k, c in customers.items() if k not in new_customers], cfields,
                                     batch_size=500)


def rollups_apply(*, batch_size: int = 2000, max_batches: int = 50) -> int:
    """Applies pending metric events to the rollups and facts, oldest first.
    One applier at a time (a locked row); each batch commits with its events
    marked, so a crash re-applies nothing and loses nothing."""
    RollupLock.objects.get_or_create(pk=1)
    applied = 0
    for _ in range(max_batches):
        with transaction.atomic():
            lock = RollupLock.objects.select_for_update().get(pk=1)
            events = list(MetricEvent.objects.filter(rolled_up=False).order_by("id")[:batch_size])
            if not events:
                break
            _apply_metric_rows(events)
            _apply_term_rows(events)
            _apply_facts(events)
            MetricEvent.objects.filter(pk__in=[e.pk for e in events]).update(rolled_up=True)
            lock.applied_total += len(events)
            lock.last_run_at = timezone.now()
            lock.save()
            applied += len(events)
    return applied


def quarter_rows_backfill(batch_size: int = 2000) -> int:
    """The quarter-hour rows (rollups, slices, terms) of the events already applied, built
    from the events: once, on a database whose rollups predate them (migration 0016). The
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
            _apply_metric_rows(events, grains=(Grain.QUARTER,))
            _apply_term_rows(events, grains=(Grain.QUARTER,))
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
