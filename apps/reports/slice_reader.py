"""The shared reader of the reports: rollup rows grouped and labelled, and the fast path over the
one-dimension slices (SlicePlan: whole weeks, days, and a local day's edge hours in zones other
than UTC). Every report reads through it; none reads messages."""
from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Q, Sum, TextField
from django.db.models.functions import Cast

from apps.accounts.models import Team
from apps.connectors.models import ChannelAccount
from apps.inbox.models import Queue

from . import metrics
from .metrics import CHANNEL_ACCOUNT_METRICS, HOUR_SLICE_FILTERS, VALUE_METRICS
from .models import ConversationFact, Grain, MetricRollup, MetricSlice, SliceGrain
from .params import DIMENSIONS, ReportParams

# --- reading rollups ------------------------------------------------------------

class Agg:
    """Counts, sums and values of each metric in one group. From slices (`hist`
    set), durations come from the merged histogram unless the group is small
    enough to have its exact values."""

    __slots__ = ("count", "total", "values", "hist", "approx")

    def __init__(self, hist: bool = False):
        self.count: dict[str, int] = defaultdict(int)
        self.total: dict[str, float] = defaultdict(float)
        self.values: dict[str, list] = defaultdict(list)
        self.hist: dict[str, dict] | None = defaultdict(dict) if hist else None
        self.approx: set[str] = set()  # metrics whose exact values are not all at hand: the histogram answers

    def exact(self, metric) -> bool:
        return self.hist is None or (self.n(metric) <= metrics.EXACT_MAX and metric not in self.approx)

    def scores(self, metric) -> list:
        """Survey answers (small integers): each has a histogram bin of its own, so
        the histogram gives them back exactly."""
        if self.exact(metric):
            return self.values.get(metric, [])
        return [v for b, n in sorted(self.hist.get(metric, {}).items()) for v in [metrics.hist_score(b)] * n]

    def summary(self, metric) -> dict:
        n = self.n(metric)
        if self.exact(metric):
            return metrics.summary(self.values.get(metric, []))
        return metrics.hist_summary(self.hist.get(metric, {}), n, self.total.get(metric, 0.0))

    def add(self, metric, count, total, values):
        self.count[metric] += count
        self.total[metric] += total
        if values:
            self.values[metric].extend(values)

    def n(self, metric) -> int:
        return self.count.get(metric, 0)


def rollup_rows(params: ReportParams, metric_names, *, lo=None, hi=None):
    lo_hi = params.utc_range
    lo, hi = lo or lo_hi[0], hi or lo_hi[1]
    if params.tz.key == "UTC" and lo.hour == 0 and hi.hour == 0:
        where = Q(grain=Grain.DAY, bucket__gte=lo, bucket__lt=hi)
    else:
        where = local_buckets_q(lo, hi, params.cuts)
    qs = MetricRollup.objects.filter(where, metric__in=list(metric_names), **params.filters())
    return qs.values_list("bucket", "metric", *DIMENSIONS, "count", "total", "values")


def local_buckets_q(lo: dt.datetime, hi: dt.datetime, cuts=()) -> Q:
    """The hour and quarter-hour rows (MetricRollup, MetricSlice, TermRollup: the grains share
    their letters) that are exactly [lo, hi), none across a local midnight in `cuts`: each row
    then lies in one local day (metrics.bucket_cover). A whole-hour zone reads hours only."""
    a, b, split, quarters = metrics.bucket_cover(lo, hi, cuts)
    out = Q(pk__in=[])
    if a < b:
        out = Q(grain=Grain.HOUR, bucket__gte=a, bucket__lt=b)
        if split:
            out &= ~Q(bucket__in=split)
    if quarters:
        out |= Q(grain=Grain.QUARTER, bucket__gte=quarters[0], bucket__lte=quarters[-1], bucket__in=quarters)
    return out



def rows_group(rows, params: ReportParams, by: str | None) -> dict:
    groups: dict = defaultdict(Agg)
    for bucket, metric, channel, account_id, queue_id, team_id, agent_id, count, total, values in rows:
        if by is None:
            key = "all"
        elif by == "day":
            key = bucket.astimezone(params.tz).date()
        else:
            key = {"channel": channel, "account": account_id, "queue": queue_id, "team": team_id,
                   "agent": agent_id}[by]
        groups[key].add(metric, count, total, values)
    return groups


def dimension_labels(by: str, keys, show_people: bool) -> dict:
    ids = [k for k in keys if k]
    if by == "queue":
        names = dict(Queue.objects.filter(pk__in=ids).values_list("pk", "name"))
    elif by == "team":
        names = dict(Team.objects.filter(pk__in=ids).values_list("pk", "name"))
    elif by == "account":
        names = dict(ChannelAccount.objects.filter(pk__in=ids).values_list("pk", "name"))
    elif by == "agent":
        if not show_people:
            return {k: (f"Agent {k}" if k else "(nobody)") for k in keys}
        names = {u.pk: u.display_name for u in get_user_model().objects.filter(pk__in=ids)}
    else:
        return {k: (str(k) if k else "(none)") for k in keys}
    # agent 0: nobody was assigned (an SLA breach on an unassigned conversation, a cycle start)
    none = "(unassigned)" if by == "agent" else "(none)"
    return {k: names.get(k, f"#{k}") if k else none for k in keys}


def id_field(by: str) -> str:
    return "channel_key" if by == "channel" else f"{by}_id"


def rows_by_label(rows: list[dict], by: str) -> list[dict]:
    """By label, then id: two accounts (or agents) may share a name."""
    return sorted(rows, key=lambda r: (str(r[by]), str(r[id_field(by)])))


def rollup_breakdown(rows, params, by, row_fn) -> list[dict]:
    groups = rows_group(rows, params, by)
    if by == "day":
        return [{"day": d.isoformat(), **row_fn(groups.get(d, Agg()))} for d in params.days]
    labels = dimension_labels(by, list(groups), params.show_people)
    out = [{by: labels[k], id_field(by): k, **row_fn(agg)}
           for k, agg in groups.items()]
    return rows_by_label(out, by)


# --- the fast path: one-dimension day slices --------------------------------------

@dataclass
class SlicePlan:
    """How an unfiltered report reads MetricSlice: the UTC days [lo, hi), each given
    to the local day it mostly lies in (its nearest local midnight), and the signed
    hours that move each UTC midnight to the local one. Berlin's day is its UTC day
    plus the hour before it (+1) minus its own last hour (-1): two hours of full
    rollup rows a day instead of all 24. An edge is a (grain, UTC bucket): whole hours,
    and quarter hours where a local midnight is not a whole hour (Kolkata's day starts
    at 18:30 UTC: + the quarters 18:30 and 18:45, + the hours 19-23)."""
    lo: dt.datetime
    hi: dt.datetime
    day_of: dict  # UTC date -> local date
    day_edges: list  # (sign, (grain, UTC bucket), local date)
    range_start: list  # (sign, (grain, UTC bucket)) at the start of the whole range
    range_end: list
    start_shift: int = 0  # backlog: the range's signed start hours (filled while reading)
    # A filtered report's filter (fdim, fkey): it reads the filter slices, and the full rows
    # of that value for what the filter slices don't keep (its days outside whole weeks).
    fdim: str = ""
    fkey: str = ""

    @property
    def slices(self):
        return MetricSlice.objects.filter(fdim=self.fdim, fkey=self.fkey)

    @property
    def column_filter(self) -> dict:
        """The full rollup rows' condition for this plan's filter."""
        if not self.fdim:
            return {}
        return {SLICE_COLUMNS[self.fdim]: self.fkey if self.fdim == "channel" else int(self.fkey)}

    @property
    def dims(self) -> list[str]:
        """The dimensions the range is broken down by (the filter's own is its total)."""
        return [d for d in SLICE_COLUMNS if d != self.fdim]


def nearest_midnight(moment: dt.datetime) -> dt.datetime:
    floor = metrics.floor_day(moment)
    return floor if moment - floor <= dt.timedelta(hours=12) else floor + dt.timedelta(days=1)


def edge_hours(at: dt.datetime, midnight: dt.datetime, *, start: bool) -> list[tuple[int, tuple]]:
    """A local day that starts before its UTC midnight gains the buckets between (+1);
    one that starts after it loses them (-1); the other way round at its end. The buckets
    are (grain, start): whole hours, and quarter hours up to the local midnight where it
    is not a whole hour."""
    if at == midnight:
        return []
    a, b = sorted((at, midnight))
    sign = (1 if at < midnight else -1) * (1 if start else -1)
    ha, hb, _, quarters = metrics.bucket_cover(a, b)
    hours = [ha + dt.timedelta(hours=i) for i in range(int((hb - ha).total_seconds() // 3600))]
    return [(sign, (Grain.HOUR, h)) for h in hours] + [(sign, (Grain.QUARTER, q)) for q in quarters]


def slice_plan(params: ReportParams) -> SlicePlan | None:
    """None when the report must read the full rollup rows: two filters or more (the
    filter slices have one). Local days are exact in every zone: where a local midnight is
    not a whole UTC hour (India, Nepal, Newfoundland, South Australia) its edge is read
    from quarter-hour rows up to the midnight itself."""
    filters = params.filters()
    if len(filters) > 1:
        return None
    fdim, fkey = "", ""
    if filters:
        (column, value), = filters.items()
        fdim, fkey = {c: d for d, c in SLICE_COLUMNS.items()}[column], str(value)
    lo, hi = params.utc_range
    if params.tz.key == "UTC":
        return SlicePlan(lo, hi, {d: d for d in params.days}, [], [], [], fdim=fdim, fkey=fkey)
    day_of, day_edges, bounds = {}, [], []
    for day in params.days:
        a, b = metrics.local_range_utc(day, day, params.tz)
        da, db = nearest_midnight(a), nearest_midnight(b)
        u = da
        while u < db:
            day_of[u.date()] = day
            u += dt.timedelta(days=1)
        starts, ends = edge_hours(a, da, start=True), edge_hours(b, db, start=False)
        day_edges += [(sign, hour, day) for sign, hour in starts + ends]
        bounds.append((da, db, starts, ends))
    return SlicePlan(bounds[0][0], bounds[-1][1], day_of, day_edges, bounds[0][2], bounds[-1][3], fdim=fdim,
                     fkey=fkey)


def plan_spans(lo: dt.datetime | None, hi: dt.datetime) -> list[tuple[str, dt.datetime | None, dt.datetime]]:
    """The slice rows that add up to the UTC days [lo, hi) (lo None: from the
    beginning), as (grain, from, to): the whole ISO weeks inside from the week
    rows, the days before the first and after the last from the day rows. 90 days
    read 12-13 week rows and up to 12 day rows per key instead of 90."""
    whi = metrics.floor_week(hi)
    if lo is None:
        return [(SliceGrain.WEEK, None, whi), (SliceGrain.DAY, whi, hi)]
    wlo = metrics.floor_week(lo)
    if wlo < lo:
        wlo += dt.timedelta(days=7)
    if whi <= wlo:
        return [(SliceGrain.DAY, lo, hi)]
    return [(SliceGrain.WEEK, wlo, whi), (SliceGrain.DAY, lo, wlo), (SliceGrain.DAY, whi, hi)]


def spans_q(spans, **filters) -> Q:
    """The spans' rows, `filters` repeated in each (an index condition of each arm of the OR)."""
    out = Q(pk__in=[])
    for grain, a, b in spans:
        if a is None:
            out |= Q(grain=grain, bucket__lt=b, **filters)
        elif a < b:
            out |= Q(grain=grain, bucket__gte=a, bucket__lt=b, **filters)
    return out


# A slice's dimension -> the rollup column it sums over.
SLICE_COLUMNS = {"channel": "channel", "account": "account_id", "queue": "queue_id", "team": "team_id",
                 "agent": "agent_id"}


def slice_groups(plan: SlicePlan, metric_names, day_dims=("",), day_metrics=None) -> tuple[dict, dict]:
    """{(dim, key): Agg} over the whole range and {(dim, key, local day): Agg} for
    `day_dims` and `day_metrics` (default: all of `metric_names`; a report whose per-day series
    shows a few of them reads only those: each local day's edge hours are most of its rows
    in a zone far from UTC): counts and sums added up in SQL, duration histograms merged in
    SQL, exact values fetched only for groups small enough to use them. In a zone
    other than UTC the plan's edge hours are added or taken away from the full hour rows."""
    day_metrics = list(day_metrics or metric_names)
    lo, hi = plan.lo, plan.hi
    spans = plan_spans(lo, hi)
    range_days = []
    if plan.fdim:
        # filter slices keep weeks only, besides the total: the range's other days come
        # from the filter's full day rows (a few days of one value's rows), like edge hours
        for grain, a, b in spans:
            while grain == SliceGrain.DAY and a < b:
                range_days.append(a)
                a += dt.timedelta(days=1)
        spans = [span for span in spans if span[0] == SliceGrain.WEEK]
        day_dims = ("",)
    range_rows = plan.slices.filter(spans_q(spans, metric__in=list(metric_names)))
    day_rows = plan.slices.filter(grain=SliceGrain.DAY, bucket__gte=lo, bucket__lt=hi,
                                  metric__in=day_metrics, dim__in=day_dims)
    groups: dict = defaultdict(lambda: Agg(hist=True))
    days: dict = defaultdict(lambda: Agg(hist=True))
    for dim, key, metric, c, t in (range_rows.values_list("dim", "key", "metric")
                                   .annotate(c=Sum("count"), t=Sum("total")).order_by()):
        groups[(dim, key)].add(metric, c, t, None)
    day_of = plan.day_of
    if len(day_metrics) <= PIVOT_MAX_METRICS:
        for (dim, key, bucket), sums in metric_sums(day_rows, ("dim", "key", "bucket"), day_metrics):
            agg = days[(dim, key, day_of[bucket.date()])]
            for metric, c, t in sums:
                agg.add(metric, c, t, None)
    else:
        for dim, key, bucket, metric, c, t in (day_rows.values_list("dim", "key", "bucket", "metric")
                                               .annotate(c=Sum("count"), t=Sum("total")).order_by()):
            days[(dim, key, day_of[bucket.date()])].add(metric, c, t, None)
    valued = [m for m in metric_names if m in VALUE_METRICS]
    # A group is exact when it and every slice row in it hold at most EXACT_MAX values:
    # decided on the slices' counts, before edge hours are taken away.
    for agg in [*groups.values(), *days.values()]:
        agg.approx.update(m for m in valued if agg.n(m) > metrics.EXACT_MAX)
    edge_values = edge_rows_add(plan, metric_names, valued, day_dims, groups, days, range_days, day_metrics)
    if not valued:
        return filter_total(plan, groups), days
    small_range, small_days = Q(pk__in=[]), Q(pk__in=[])
    for (dim, key), agg in groups.items():
        for m in valued:
            if 0 < agg.n(m) and agg.exact(m):
                small_range |= Q(dim=dim, key=key, metric=m)
    utc_days = defaultdict(list)
    for utc_day, day in plan.day_of.items():
        utc_days[day].append(dt.datetime.combine(utc_day, dt.time(), dt.timezone.utc))
    for (dim, key, day), agg in days.items():
        for m in valued:
            if 0 < agg.n(m) and agg.exact(m):
                small_days |= Q(dim=dim, key=key, metric=m, bucket__in=utc_days[day])
    if small_range.children[1:] or small_days.children[1:]:
        # one query: a row counts for its range group if it is one of the range's rows,
        # for its day if it is a day row (a day inside a whole week is only the latter)
        edge_days = [(a, b) for grain, a, b in spans if grain == SliceGrain.DAY]
        rows = plan.slices.filter((spans_q(spans, metric__in=valued) & small_range)
                                  | (Q(grain=SliceGrain.DAY) & small_days))
        for grain, dim, key, bucket, metric, values in rows.values_list("grain", "dim", "key", "bucket", "metric",
                                                                         "values"):
            in_range = grain == SliceGrain.WEEK or any(a <= bucket < b for a, b in edge_days)
            if in_range and groups[(dim, key)].exact(metric):
                groups[(dim, key)].values[metric].extend(values)
            if grain == SliceGrain.DAY and dim in day_dims:
                agg = days[(dim, key, plan.day_of[bucket.date()])]
                if agg.exact(metric):
                    agg.values[metric].extend(values)
    if any(not agg.exact(m) for agg in [*groups.values(), *days.values()] for m in valued if agg.n(m)):
        for (dim, key, metric), hist in range_hists(plan, spans, valued).items():
            groups[(dim, key)].hist[metric] = hist
        # a day's histogram is its one day row's (or two, in a zone where a local day
        # takes in two UTC days): read as they are, no merge in SQL
        for dim, key, bucket, metric, hist in day_rows.filter(metric__in=valued).values_list(
                "dim", "key", "bucket", "metric", "hist"):
            merged = days[(dim, key, plan.day_of[bucket.date()])].hist[metric]
            for b, n in hist.items():
                merged[int(b)] = merged.get(int(b), 0) + n
    # additions first: a filtered range's day (+1) holds the values its edge hours (-1) take out
    for agg, metric, sign, values, edge_hist in sorted(edge_values, key=lambda e: -e[2]):
        if agg.exact(metric):
            for v in values or ():
                if sign > 0:
                    agg.values[metric].append(v)
                elif v in agg.values[metric]:
                    agg.values[metric].remove(v)
        elif edge_hist is not None:
            hist = agg.hist[metric]
            for b, n in edge_hist.items():
                hist[b] = hist.get(b, 0) + sign * n
        else:
            hist = agg.hist[metric]
            for v in values:
                b = metrics.hist_bin(v)
                hist[b] = hist.get(b, 0) + sign
    return filter_total(plan, groups), days


def filter_total(plan: SlicePlan, groups: dict) -> dict:
    """The range's groups as a report lists them. Under a filter, the breakdown by the
    filter's own dimension is its total (by team with ?team=2: team 2 alone), as when the
    full rows are grouped. A key whose rows the edges took out again (a day added, its
    hours before a local midnight taken away) has nothing in the range: left out, as the
    full rows leave it out."""
    groups = {k: agg for k, agg in groups.items() if k == ("", "") or any(agg.count.values())}
    if plan.fdim and ("", "") in groups:
        groups[(plan.fdim, plan.fkey)] = groups[("", "")]
    return groups


# The day rows of a report reading at most this many metrics come one row per key and
# day (a column per metric), not per key, day and metric: the sentiment series' 5
# metrics over 9 keys and 90 days are 810 rows instead of 4,050 (~10 ms less of Python
# converting them). With more metrics (service 15, experience 16, mostly "all" only) the
# FILTER columns cost PostgreSQL more than the rows save (measured: service 90 days
# 77 vs 83 ms); the range rows (~80 keys) are too few to gain either way.
PIVOT_MAX_METRICS = 8


def metric_sums(rows, fields, metric_names):
    """((*fields), [(metric, count, total), ...]) of `rows` grouped by `fields`: one
    row per group with a count and a sum column per metric (FILTER)."""
    sums = {}
    for i, metric in enumerate(metric_names):
        sums[f"c{i}"] = Sum("count", filter=Q(metric=metric))
        sums[f"t{i}"] = Sum("total", filter=Q(metric=metric))
    n = len(fields)
    for row in rows.values_list(*fields).annotate(**sums).order_by():
        # a metric without rows in the group sums to NULL: left out, as when grouped by metric
        yield row[:n], [(metric, row[n + 2 * i], row[n + 2 * i + 1]) for i, metric in enumerate(metric_names)
                        if row[n + 2 * i] is not None]


def edge_rows_add(plan: SlicePlan, metric_names, valued, day_dims, groups: dict, days: dict,
                   range_days=(), day_metrics=None) -> list:
    """Adds the plan's signed edge hours (full hour rollup rows, projected on each
    dimension) to the range's groups and the local days, and a filtered range's days
    outside whole weeks (full day rows) to its groups; returns the signed values of the
    duration metrics, which are added once the exact/histogram choice is made."""
    range_sign = {edge: sign for sign, edge in plan.range_start + plan.range_end}
    start_hours = {edge for _, edge in plan.range_start}
    day_signs = defaultdict(list)
    for sign, edge, day in plan.day_edges:
        day_signs[edge].append((sign, day))
    out = []

    def add(agg, sign, metric, count, total, values, hist=None):
        agg.count[metric] += sign * count
        agg.total[metric] += sign * total
        if metric in valued and (values or hist):
            if not values and count > metrics.EXACT_MAX:
                agg.approx.add(metric)  # an hour slice too big for its values: the histograms answer
            out.append((agg, metric, sign, values, hist))

    # The range's own edges count in every dimension; the days' edges only in day_dims.
    where = plan.column_filter
    for bucket, metric, dim, key, count, total, values in graded_edge_rows(list(range_sign), metric_names, valued,
                                                                             plan.dims, where):
        sign = range_sign[bucket]
        add(groups[(dim, key)], sign, metric, count, total, values)
        if dim == "" and bucket in start_hours and metric in BACKLOG_SIGNS:
            plan.start_shift += sign * BACKLOG_SIGNS[metric] * count
    for _, metric, dim, key, count, total, values in edge_rows(range_days, metric_names, valued, plan.dims, where,
                                                                grain=Grain.DAY):
        add(groups[(dim, key)], 1, metric, count, total, values)
    day_metrics = day_metrics or metric_names
    for bucket, metric, dim, key, count, total, values, hist in day_edge_rows(
            plan, list(day_signs), day_metrics, [m for m in valued if m in day_metrics], day_dims, list(groups)):
        for sign, day in day_signs[bucket]:
            add(days[(dim, key, day)], sign, metric, count, total, values, hist)
    return out


def graded_edge_rows(edges, metric_names, valued, dims, where=None):
    """edge_rows of (grain, bucket) edges: one read per grain (quarters only in a zone whose
    midnights are not whole hours), each row's bucket given back as its (grain, bucket)."""
    out = []
    for grain in (Grain.HOUR, Grain.QUARTER):
        buckets = [b for g, b in edges if g == grain]
        out += [((grain, bucket), *rest) for bucket, *rest in edge_rows(buckets, metric_names, valued, dims, where,
                                                                         grain=grain)]
    return out


def day_edge_rows(plan: SlicePlan, edges, metric_names, valued, day_dims, keys=()):
    """The hours (and quarter hours) the local days take from or give to their UTC days, per
    day dimension, as ((grain, bucket), metric, dim, key, count, total, values, hist): from the
    hour and quarter slices (a bucket's total, unfiltered or for one value: a channel's or
    account's hour is the unfiltered report's channel or account row of that hour), a few rows
    a bucket instead of every combination; an agent's from its full rows (agents have no hour
    slices)."""
    if not edges:
        return []
    if plan.fdim not in HOUR_SLICE_FILTERS:
        return [(*row, None) for row in graded_edge_rows(edges, metric_names, valued, [d for d in day_dims if d],
                                                         plan.column_filter)]
    return [row for grain in (SliceGrain.HOUR, SliceGrain.QUARTER)
            for row in _slice_edge_rows(plan, grain, [b for g, b in edges if g == grain], metric_names, valued,
                                        day_dims, keys)]


def _slice_edge_rows(plan: SlicePlan, grain, hours, metric_names, valued, day_dims, keys=()):
    if not hours:
        return []
    views = [Q(fdim=plan.fdim, fkey=plan.fkey)] if "" in day_dims else []
    if not plan.fdim:
        # each listed value by name: with fkey open, the index range is every value's hours
        views += [Q(fdim=dim, fkey__in=[k for d, k in keys if d == dim]) for dim in day_dims if dim]
    loads = json.loads
    rows = []
    # the hours' span as well as the hours: with the list alone PostgreSQL took the index for
    # (grain, fdim, fkey, dim) and filtered two years of a value's hour rows (0.45 s for a channel)
    span = {"bucket__gte": min(hours), "bucket__lte": max(hours)}
    for view in views:  # one query a view: an OR of them made PostgreSQL scan far more
        rows += MetricSlice.objects.filter(view, grain=grain, dim="", bucket__in=hours, **span,
                                           metric__in=list(metric_names)).values_list(
            "fdim", "fkey", "bucket", "metric", "count", "total", "values", Cast("hist", TextField()))
    out = []
    for fdim, fkey, bucket, metric, count, total, values, hist in rows:
        dim, key = ("", "") if fdim == plan.fdim else (fdim, fkey)
        if metric in valued:
            out.append(((grain, bucket), metric, dim, key, count, total, values,
                        {int(b): n for b, n in loads(hist).items()}))
        else:
            out.append(((grain, bucket), metric, dim, key, count, total, None, None))
    return out


def edge_rows(hours, metric_names, valued, dims, where=None, grain=Grain.HOUR):
    """(hour, metric, dim, key, count, total, values) of the full hour rows (or day rows,
    `grain`) matching `where` (a filter: {column: value}), summed over every other
    dimension: `dims` plus "" (all). GROUPING SETS on PostgreSQL; projected here on the
    embedded SQLite (its small data sets)."""
    where = where or {}
    from django.db import connection

    if not hours:
        return []
    if connection.vendor == "postgresql":
        cols = [SLICE_COLUMNS[d] for d in dims]
        dim_sql = key_sql = "''"  # the (bucket, metric) set: all
        if dims:
            dim_sql = "CASE " + " ".join(f"WHEN GROUPING({c}) = 0 THEN '{d}'" for d, c in zip(dims, cols)) + \
                " ELSE '' END"
            key_sql = "CASE " + " ".join(f"WHEN GROUPING({c}) = 0 THEN {c}::text" for c in cols) + " ELSE '' END"
        sets = ", ".join(["(bucket, metric)", *(f"(bucket, metric, {c})" for c in cols)])
        cond = "".join(f" AND {column} = %s" for column in where)  # columns of SLICE_COLUMNS, never input
        sql = (f"SELECT bucket, metric, {dim_sql}, {key_sql}, sum(count), sum(total), "
               f"jsonb_agg(\"values\") FILTER (WHERE metric = ANY(%s) AND \"values\" <> '[]'::jsonb) "
               f"FROM reports_metricrollup WHERE grain = %s AND bucket = ANY(%s) AND metric = ANY(%s){cond} "
               f"GROUP BY GROUPING SETS ({sets})")
        with connection.cursor() as cursor:
            cursor.execute(sql, (list(valued), grain, list(hours), list(metric_names), *where.values()))
            # Django's connection hands jsonb over as text (JSONField decodes it itself)
            return [(b, m, d, k, c, t, [v for vs in json.loads(values or "[]") for v in vs])
                    for b, m, d, k, c, t, values in cursor.fetchall()]
    out: dict = {}
    rows = MetricRollup.objects.filter(grain=grain, bucket__in=hours, metric__in=list(metric_names), **where)
    for bucket, metric, *cells, count, total, values in rows.values_list("bucket", "metric", *DIMENSIONS, "count",
                                                                          "total", "values"):
        column = dict(zip(DIMENSIONS, cells))
        for dim, key in [("", ""), *((d, str(column[SLICE_COLUMNS[d]])) for d in dims)]:
            row = out.setdefault((bucket, metric, dim, key), [0, 0.0, []])
            row[0] += count
            row[1] += total
            if metric in valued:
                row[2].extend(values or [])
    return [(*k, c, t, v) for k, (c, t, v) in out.items()]


def range_hists(plan: SlicePlan, spans, valued) -> dict:
    """{(dim, key, metric): {bin: count}}: the range rows' histograms merged here, not
    in SQL: 90 days are ~2,600 rows x ~50 bins, which PostgreSQL expands into rows,
    sorts and groups in 90-200 ms, and Python adds up in about a third of that. The
    JSON is decoded here (as text: no per-row field converters)."""
    merged: dict = {}
    loads = json.loads
    rows = plan.slices.filter(spans_q(spans, metric__in=valued)).values_list(
        "dim", "key", "metric", Cast("hist", TextField()))
    for dim, key, metric, text in rows:
        hist = loads(text)
        out = merged.get((dim, key, metric))
        if out is None:
            merged[(dim, key, metric)] = hist
            continue
        get = out.get
        for b, n in hist.items():
            out[b] = get(b, 0) + n
    return {k: {int(b): n for b, n in hist.items()} for k, hist in merged.items()}


SLICE_BY = {"channel": "channel", "account": "account", "queue": "queue", "team": "team", "agent": "agent"}


def slice_breakdown(groups: dict, params: ReportParams, by: str, row_fn) -> list[dict]:
    keys = {(k if by == "channel" else int(k)): agg for (dim, k), agg in groups.items() if dim == by}
    labels = dimension_labels(by, list(keys), params.show_people)
    out = [{by: labels[k], id_field(by): k, **row_fn(agg)}
           for k, agg in keys.items()]
    return rows_by_label(out, by)


BACKLOG_SIGNS = {"opened": 1, "reopened": 1, "resolved": -1, "dismissed": -1}


# --- experience ---------------------------------------------------------------

SENTIMENT_METRICS = list(CHANNEL_ACCOUNT_METRICS)


def sentiment_row(agg: Agg) -> dict:
    scored = agg.n("sentiment")
    return {
        "messages": agg.n("msg_in"), "scored": scored, "positive": agg.n("msg_in_positive"),
        "negative": agg.n("msg_in_negative"), "neutral": agg.n("msg_in_neutral"),
        "net_sentiment": metrics.net_sentiment(agg.n("msg_in_positive"), agg.n("msg_in_negative"), scored),
        "mean_compound": metrics.mean_compound(agg.total["sentiment"], scored),
    }


def conversation_facts(params: ReportParams):
    lo, hi = params.utc_range
    return ConversationFact.objects.filter(last_resolved_at__gte=lo, last_resolved_at__lt=hi, **params.filters())


def conversation_link(conversation_id: int, params: ReportParams) -> str | None:
    return f"/inbox/c/{conversation_id}/" if params.show_people else None
