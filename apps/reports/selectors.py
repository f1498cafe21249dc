"""Reads for the reports. They read rollups and facts only, never messages.

Time zones: rollups are kept per UTC hour and per UTC day. A report with at most one
filter reads the slices (MetricSlice: its range's whole ISO weeks from week rows, the
rest and the per-day series from day rows; a filter's own slices under ?team= etc.); in
a zone other than UTC each local day is its nearest UTC day plus or minus the hours
between the two midnights, read from the hour slices (SlicePlan), and the marketing
series by channel and account are the channel-and-account hour slices summed per local
day. Two filters or more regroup the full rows. Exact for every zone whose offset is a
whole number of hours; in the few half-hour zones an hour is given to the local day it
starts in."""
from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import BooleanField, Count, ExpressionWrapper, F, Q, Sum, TextField
from django.db.models.functions import Cast, TruncDate

from apps.accounts.models import Team
from apps.connectors.models import ChannelAccount
from apps.routing.models import Queue

from . import metrics
from .metrics import CHANNEL_ACCOUNT, CHANNEL_ACCOUNT_METRICS, HOUR_SLICE_FILTERS, VALUE_METRICS
from .models import ConversationFact, CustomerFact, Grain, MetricRollup, MetricSlice, SliceGrain, SpikeAlert, TermRollup

DIMENSIONS = ("channel", "account_id", "queue_id", "team_id", "agent_id")


@dataclass
class ReportParams:
    start: dt.date
    end: dt.date
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    channel: str = ""
    account_id: int = 0
    queue_id: int = 0
    team_id: int = 0
    agent_id: int = 0
    show_people: bool = True  # False for marketing: no names, handles or conversation links

    @property
    def utc_range(self) -> tuple[dt.datetime, dt.datetime]:
        return metrics.local_range_utc(self.start, self.end, self.tz)

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def filters(self) -> dict:
        out = {}
        for name in DIMENSIONS:
            value = getattr(self, name)
            if value:
                out[name] = value
        return out

    def as_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "tz": self.tz.key, **self.filters()}


DEFINITIONS = {
    "first_response": "First response time: the first human reply the customer can see (public or direct, "
                      "not a private note, not an auto-reply or survey link) minus the start of the cycle "
                      "(when the conversation opened or reopened). Counted once per cycle.",
    "reply": "Reply time: each human reply minus the first customer message it answers: the first customer "
             "message after the previous human reply, never earlier than the start of the current cycle.",
    "resolution": "Resolution time: resolve (or close without resolve) minus the start of that cycle. "
                  "One resolution per cycle: resolved then closed counts once; resolved, reopened and "
                  "resolved again counts two cycles.",
    "resolution_rate": "Resolution rate: cycles resolved / cycles started (opened + reopened) in the period. "
                       "Spam and ignored conversations are dismissed: out of the backlog and the rate, "
                       "never a resolution.",
    "reopen_rate": "Reopen rate: reopens / resolutions in the period.",
    "business_hours": "Business-hours figures count only working time in the business hours and holidays "
                      "of the conversation's queue's team (its routing calendar, the one its SLAs use); a "
                      "team without a calendar uses REPORTS_BUSINESS_HOURS (default Mon-Fri 09:00-17:00) in "
                      "the team's time zone.",
    "sla": "SLA compliance: targets met / targets decided (met or breached) in the period. A first-response "
           "target is decided by the first reply, a resolution target by the resolve; a breach event from "
           "the SLA monitor decides it as breached.",
    "handle_time": "Handle time: an agent's active time on a conversation, from the inbox's presence: from "
                   "opening the thread to leaving it, while typing or otherwise using the page. A gap of more "
                   "than 5 minutes without activity (REPORTS_HANDLE_TIME) is not counted and ends the work "
                   "session; leaving and coming back within it continues the session without the time away. "
                   "One value per work session (an agent's continuous work on one conversation), counted for "
                   "that agent when it ends; two agents on one conversation count separately. Total: the sum.",
    "volume": "Volume in: customer messages received. Volume out: replies the network accepted "
              "(human; auto-replies and survey links shown apart).",
    "backlog": "Backlog: cycles started and not yet resolved, at the end of each day.",
    "periods": "Days are local days in the chosen time zone; durations count in the period they end in.",
    "csat": "CSAT: share of 4-5 answers on a 1-5 scale; response rate: surveys answered / surveys sent "
            "(counted in the period they were sent).",
    "ces": "CES: customer effort on 1-7 (higher = easier); the mean and median are shown.",
    "nps": "NPS: % promoters (9-10) minus % detractors (0-6) on 0-10.",
    "sentiment": "Sentiment: VADER compound of each customer message (English; other languages are not "
                 "scored). Positive >= 0.05, negative <= -0.05; net sentiment = % positive - % negative.",
    "shift": "Sentiment shift: the conversation's last scored customer message minus its first.",
    "repeat": "Repeat contact rate: resolutions after which the same customer contacted again (any channel) "
              "within 7 days / resolutions; counted in the period of the resolution.",
    "at_risk": "Customers at risk: churn words (cancel, switching to, refund...), or the last two scored "
               "messages negative, or a fall of 0.5 or more from the first to the last of their recent messages.",
    "themes": "Themes: topics are keyword families (billing, delivery, outage...); hashtags as written; "
              "keywords from REPORTS_KEYWORDS. Example posts are masked (no handles, links, e-mails, phones).",
    "spikes": "Spike alerts: an hour with at least 3x the mean hourly volume of the day before (and 10+ "
              "messages), or a negative share 25+ points above the day before (8+ scored messages).",
    "gap": "Service met: no SLA target breached and at least one met; with no SLA targets, a first response "
           "within REPORTS_GAP_FRT_TARGET_SECONDS (default 1 h). Experience bad: last customer sentiment "
           "negative or CSAT <= 2; good: last sentiment positive or CSAT >= 4. Conversations resolved in the "
           "period.",
}


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


def _rows(params: ReportParams, metric_names, *, lo=None, hi=None):
    lo_hi = params.utc_range
    lo, hi = lo or lo_hi[0], hi or lo_hi[1]
    grain = Grain.DAY if params.tz.key == "UTC" and lo.hour == 0 and hi.hour == 0 else Grain.HOUR
    qs = MetricRollup.objects.filter(grain=grain, bucket__gte=lo, bucket__lt=hi, metric__in=list(metric_names),
                                     **params.filters())
    return qs.values_list("bucket", "metric", *DIMENSIONS, "count", "total", "values")



def _group(rows, params: ReportParams, by: str | None) -> dict:
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


def _labels(by: str, keys, show_people: bool) -> dict:
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
    return {k: names.get(k, f"#{k}") if k else "(none)" for k in keys}


SERVICE_METRICS = ["msg_in", "msg_out", "msg_out_bot", "opened", "reopened", "dismissed", "resolved", "resolved_bh",
                   "first_response", "first_response_bh", "reply", "reply_bh", "sla_met", "sla_breached", "handle"]


def _service_row(agg: Agg) -> dict:
    started = agg.n("opened") + agg.n("reopened") - agg.n("dismissed")
    decided = agg.n("sla_met") + agg.n("sla_breached")
    return {
        "volume_in": agg.n("msg_in"), "volume_out": agg.n("msg_out"), "volume_out_bot": agg.n("msg_out_bot"),
        "opened": agg.n("opened"), "reopened": agg.n("reopened"), "dismissed": agg.n("dismissed"),
        "resolved": agg.n("resolved"),
        "first_response": agg.summary("first_response"),
        "first_response_business": agg.summary("first_response_bh"),
        "reply": agg.summary("reply"),
        "reply_business": agg.summary("reply_bh"),
        "resolution": agg.summary("resolved"),
        "resolution_rate": metrics.ratio(agg.n("resolved"), started),
        "reopen_rate": metrics.ratio(agg.n("reopened"), agg.n("resolved")),
        "sla_met": agg.n("sla_met"), "sla_breached": agg.n("sla_breached"),
        "sla_compliance": metrics.ratio(agg.n("sla_met"), decided),
        "handle_time": agg.summary("handle"),
        "handle_time_total": agg.total.get("handle", 0.0),
    }


def _id_field(by: str) -> str:
    return "channel_key" if by == "channel" else f"{by}_id"


def _by_label(rows: list[dict], by: str) -> list[dict]:
    """By label, then id: two accounts (or agents) may share a name."""
    return sorted(rows, key=lambda r: (str(r[by]), str(r[_id_field(by)])))


def _breakdown(rows, params, by, row_fn) -> list[dict]:
    groups = _group(rows, params, by)
    if by == "day":
        return [{"day": d.isoformat(), **row_fn(groups.get(d, Agg()))} for d in params.days]
    labels = _labels(by, list(groups), params.show_people)
    out = [{by: labels[k], _id_field(by): k, **row_fn(agg)}
           for k, agg in groups.items()]
    return _by_label(out, by)


def backlog_series(params: ReportParams) -> list[dict]:
    """Open cycles at the end of each local day: everything before the range
    (day rows up to the UTC day, hour rows after it) plus the running sum."""
    lo, hi = params.utc_range
    day_lo = metrics.floor_day(lo)
    signs = {"opened": 1, "reopened": 1, "resolved": -1, "dismissed": -1}

    def net(qs):
        return sum(signs[m] * (c or 0) for m, c in qs.values_list("metric").annotate(c=Sum("count")))

    base = MetricRollup.objects.filter(metric__in=list(signs), **params.filters())
    start = net(base.filter(grain=Grain.DAY, bucket__lt=day_lo)) + net(
        base.filter(grain=Grain.HOUR, bucket__gte=day_lo, bucket__lt=lo))
    per_day = defaultdict(int)
    for bucket, metric, count in base.filter(grain=Grain.HOUR, bucket__gte=lo, bucket__lt=hi).values_list(
            "bucket", "metric", "count"):
        per_day[bucket.astimezone(params.tz).date()] += signs[metric] * count
    out, running = [], start
    for day in params.days:
        running += per_day.get(day, 0)
        out.append({"day": day.isoformat(), "backlog": running})
    return out


# --- the fast path: one-dimension day slices --------------------------------------

@dataclass
class SlicePlan:
    """How an unfiltered report reads MetricSlice: the UTC days [lo, hi), each given
    to the local day it mostly lies in (its nearest local midnight), and the signed
    hours that move each UTC midnight to the local one. Berlin's day is its UTC day
    plus the hour before it (+1) minus its own last hour (-1): two hours of full
    rollup rows a day instead of all 24."""
    lo: dt.datetime
    hi: dt.datetime
    day_of: dict  # UTC date -> local date
    day_edges: list  # (sign, UTC hour, local date)
    range_start: list  # (sign, UTC hour) at the start of the whole range
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


def _nearest_midnight(moment: dt.datetime) -> dt.datetime:
    floor = metrics.floor_day(moment)
    return floor if moment - floor <= dt.timedelta(hours=12) else floor + dt.timedelta(days=1)


def _edge_hours(at: dt.datetime, midnight: dt.datetime, *, start: bool) -> list[tuple[int, dt.datetime]]:
    """A local day that starts before its UTC midnight gains the hours between (+1);
    one that starts after it loses them (-1); the other way round at its end."""
    if at == midnight:
        return []
    a, b = sorted((at, midnight))
    sign = (1 if at < midnight else -1) * (1 if start else -1)
    return [(sign, a + dt.timedelta(hours=i)) for i in range(int((b - a).total_seconds() // 3600))]


def _hour_ceil(moment: dt.datetime) -> dt.datetime:
    floor = metrics.floor_hour(moment)
    return floor if floor == moment else floor + dt.timedelta(hours=1)


def _slice_plan(params: ReportParams) -> SlicePlan | None:
    """None when the report must read the full rollup rows: two filters or more (the
    filter slices have one). A zone whose offset is not a whole number of hours (India)
    gives each UTC hour to the local day it starts in, as the hour rows always did: its
    local days are read from UTC hour boundaries (the next whole hour after each midnight)."""
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
        a, b = (_hour_ceil(t) for t in metrics.local_range_utc(day, day, params.tz))
        da, db = _nearest_midnight(a), _nearest_midnight(b)
        u = da
        while u < db:
            day_of[u.date()] = day
            u += dt.timedelta(days=1)
        starts, ends = _edge_hours(a, da, start=True), _edge_hours(b, db, start=False)
        day_edges += [(sign, hour, day) for sign, hour in starts + ends]
        bounds.append((da, db, starts, ends))
    return SlicePlan(bounds[0][0], bounds[-1][1], day_of, day_edges, bounds[0][2], bounds[-1][3], fdim=fdim,
                     fkey=fkey)


def _spans(lo: dt.datetime | None, hi: dt.datetime) -> list[tuple[str, dt.datetime | None, dt.datetime]]:
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


def _spans_q(spans, **filters) -> Q:
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


def _slice_groups(plan: SlicePlan, metric_names, day_dims=("",), day_metrics=None) -> tuple[dict, dict]:
    """{(dim, key): Agg} over the whole range and {(dim, key, local day): Agg} for
    `day_dims` and `day_metrics` (default: all of `metric_names`; a report whose per-day series
    shows a few of them reads only those: each local day's edge hours are most of its rows
    in a zone far from UTC): counts and sums added up in SQL, duration histograms merged in
    SQL, exact values fetched only for groups small enough to use them. In a zone
    other than UTC the plan's edge hours are added or taken away from the full hour rows."""
    day_metrics = list(day_metrics or metric_names)
    lo, hi = plan.lo, plan.hi
    spans = _spans(lo, hi)
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
    range_rows = plan.slices.filter(_spans_q(spans, metric__in=list(metric_names)))
    day_rows = plan.slices.filter(grain=SliceGrain.DAY, bucket__gte=lo, bucket__lt=hi,
                                  metric__in=day_metrics, dim__in=day_dims)
    groups: dict = defaultdict(lambda: Agg(hist=True))
    days: dict = defaultdict(lambda: Agg(hist=True))
    for dim, key, metric, c, t in (range_rows.values_list("dim", "key", "metric")
                                   .annotate(c=Sum("count"), t=Sum("total")).order_by()):
        groups[(dim, key)].add(metric, c, t, None)
    day_of = plan.day_of
    if len(day_metrics) <= PIVOT_MAX_METRICS:
        for (dim, key, bucket), sums in _metric_sums(day_rows, ("dim", "key", "bucket"), day_metrics):
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
    edge_values = _edge_rows_add(plan, metric_names, valued, day_dims, groups, days, range_days, day_metrics)
    if not valued:
        return _filter_total(plan, groups), days
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
        rows = plan.slices.filter((_spans_q(spans, metric__in=valued) & small_range)
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
        for (dim, key, metric), hist in _range_hists(plan, spans, valued).items():
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
    return _filter_total(plan, groups), days


def _filter_total(plan: SlicePlan, groups: dict) -> dict:
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


def _metric_sums(rows, fields, metric_names):
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


def _edge_rows_add(plan: SlicePlan, metric_names, valued, day_dims, groups: dict, days: dict,
                   range_days=(), day_metrics=None) -> list:
    """Adds the plan's signed edge hours (full hour rollup rows, projected on each
    dimension) to the range's groups and the local days, and a filtered range's days
    outside whole weeks (full day rows) to its groups; returns the signed values of the
    duration metrics, which are added once the exact/histogram choice is made."""
    range_sign = {hour: sign for sign, hour in plan.range_start + plan.range_end}
    start_hours = {hour for _, hour in plan.range_start}
    day_signs = defaultdict(list)
    for sign, hour, day in plan.day_edges:
        day_signs[hour].append((sign, day))
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
    for bucket, metric, dim, key, count, total, values in _edge_rows(list(range_sign), metric_names, valued,
                                                                      plan.dims, where):
        sign = range_sign[bucket]
        add(groups[(dim, key)], sign, metric, count, total, values)
        if dim == "" and bucket in start_hours and metric in BACKLOG_SIGNS:
            plan.start_shift += sign * BACKLOG_SIGNS[metric] * count
    for _, metric, dim, key, count, total, values in _edge_rows(range_days, metric_names, valued, plan.dims, where,
                                                                grain=Grain.DAY):
        add(groups[(dim, key)], 1, metric, count, total, values)
    day_metrics = day_metrics or metric_names
    for bucket, metric, dim, key, count, total, values, hist in _day_edge_rows(
            plan, list(day_signs), day_metrics, [m for m in valued if m in day_metrics], day_dims, list(groups)):
        for sign, day in day_signs[bucket]:
            add(days[(dim, key, day)], sign, metric, count, total, values, hist)
    return out


def _day_edge_rows(plan: SlicePlan, hours, metric_names, valued, day_dims, keys=()):
    """The hours the local days take from or give to their UTC days, per day dimension, as
    (hour, metric, dim, key, count, total, values, hist): from the hour slices (an hour's
    total, unfiltered or for one value: a channel's or account's hour is the unfiltered
    report's channel or account row of that hour), a few rows an hour instead of every
    combination; an agent's from its full hour rows (agents have no hour slices)."""
    if not hours:
        return []
    if plan.fdim not in HOUR_SLICE_FILTERS:
        return [(*row, None) for row in _edge_rows(hours, metric_names, valued, [d for d in day_dims if d],
                                                   plan.column_filter)]
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
        rows += MetricSlice.objects.filter(view, grain=SliceGrain.HOUR, dim="", bucket__in=hours, **span,
                                           metric__in=list(metric_names)).values_list(
            "fdim", "fkey", "bucket", "metric", "count", "total", "values", Cast("hist", TextField()))
    out = []
    for fdim, fkey, bucket, metric, count, total, values, hist in rows:
        dim, key = ("", "") if fdim == plan.fdim else (fdim, fkey)
        if metric in valued:
            out.append((bucket, metric, dim, key, count, total, values,
                        {int(b): n for b, n in loads(hist).items()}))
        else:
            out.append((bucket, metric, dim, key, count, total, None, None))
    return out


def _edge_rows(hours, metric_names, valued, dims, where=None, grain=Grain.HOUR):
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


def _range_hists(plan: SlicePlan, spans, valued) -> dict:
    """{(dim, key, metric): {bin: count}}: the range rows' histograms merged here, not
    in SQL: 90 days are ~2,600 rows x ~50 bins, which PostgreSQL expands into rows,
    sorts and groups in 90-200 ms, and Python adds up in about a third of that. The
    JSON is decoded here (as text: no per-row field converters)."""
    merged: dict = {}
    loads = json.loads
    rows = plan.slices.filter(_spans_q(spans, metric__in=valued)).values_list(
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


def _slice_breakdown(groups: dict, params: ReportParams, by: str, row_fn) -> list[dict]:
    keys = {(k if by == "channel" else int(k)): agg for (dim, k), agg in groups.items() if dim == by}
    labels = _labels(by, list(keys), params.show_people)
    out = [{by: labels[k], _id_field(by): k, **row_fn(agg)}
           for k, agg in keys.items()]
    return _by_label(out, by)


BACKLOG_SIGNS = {"opened": 1, "reopened": 1, "resolved": -1, "dismissed": -1}


def _slice_backlog(params: ReportParams, days: dict, plan: SlicePlan) -> list[dict]:
    """Open cycles before the range (the slices before its first UTC day, less the
    plan's signed start hours) plus the running sum of each local day."""
    start = sum(BACKLOG_SIGNS[m] * (c or 0) for m, c in plan.slices.filter(
        _spans_q(_spans(None, plan.lo), dim="", metric__in=list(BACKLOG_SIGNS))).values_list("metric")
        .annotate(c=Sum("count")).order_by()) - plan.start_shift
    out, running = [], start
    for day in params.days:
        agg = days.get(("", "", day))
        if agg is not None:
            running += sum(sign * agg.n(m) for m, sign in BACKLOG_SIGNS.items())
        out.append({"day": day.isoformat(), "backlog": running})
    return out


SERVICE_DEFINITIONS = ("first_response", "reply", "resolution", "resolution_rate", "reopen_rate", "business_hours",
                       "sla", "volume", "backlog", "handle_time", "periods")


def service_report(*, params: ReportParams) -> dict:
    head = {"report": "service", "params": params.as_dict(),
            "definitions": {k: DEFINITIONS[k] for k in SERVICE_DEFINITIONS}}
    plan = _slice_plan(params)
    if plan:
        groups, days = _slice_groups(plan, SERVICE_METRICS)
        return {
            **head, "totals": _service_row(groups.get(("", ""), Agg())),
            "by_day": [{"day": d.isoformat(), **_service_row(days.get(("", "", d)) or Agg())} for d in params.days],
            **{f"by_{by}": _slice_breakdown(groups, params, by, _service_row)
               for by in ("channel", "queue", "team", "agent")},
            "backlog": _slice_backlog(params, days, plan),
        }
    rows = list(_rows(params, SERVICE_METRICS))
    totals = _group(rows, params, None).get("all", Agg())
    return {
        **head, "totals": _service_row(totals),
        "by_day": _breakdown(rows, params, "day", _service_row),
        "by_channel": _breakdown(rows, params, "channel", _service_row),
        "by_queue": _breakdown(rows, params, "queue", _service_row),
        "by_team": _breakdown(rows, params, "team", _service_row),
        "by_agent": _breakdown(rows, params, "agent", _service_row),
        "backlog": backlog_series(params),
    }


# --- experience ---------------------------------------------------------------

SENTIMENT_METRICS = list(CHANNEL_ACCOUNT_METRICS)
EXPERIENCE_METRICS = ["csat", "csat_sent", "csat_answered", "ces", "ces_sent", "ces_answered", "nps", "nps_sent",
                      "nps_answered", "msg_in", "sentiment", "msg_in_positive", "msg_in_negative",
                      "msg_in_neutral", "resolved", "repeat_contact"]


def _sentiment_row(agg: Agg) -> dict:
    scored = agg.n("sentiment")
    return {
        "messages": agg.n("msg_in"), "scored": scored, "positive": agg.n("msg_in_positive"),
        "negative": agg.n("msg_in_negative"), "neutral": agg.n("msg_in_neutral"),
        "net_sentiment": metrics.net_sentiment(agg.n("msg_in_positive"), agg.n("msg_in_negative"), scored),
        "mean_compound": (agg.total["sentiment"] / scored) if scored else None,
    }


def _experience_row(agg: Agg) -> dict:
    ces = agg.scores("ces")
    return {
        "csat": metrics.csat_score(agg.scores("csat")), "csat_answers": agg.n("csat"),
        "csat_sent": agg.n("csat_sent"),
        "csat_response_rate": metrics.ratio(agg.n("csat_answered"), agg.n("csat_sent")),
        "ces_mean": (sum(ces) / len(ces)) if ces else None, "ces_median": metrics.percentile(ces, 50),
        "ces_answers": len(ces), "ces_response_rate": metrics.ratio(agg.n("ces_answered"), agg.n("ces_sent")),
        "nps": metrics.nps_score(agg.scores("nps")), "nps_answers": agg.n("nps"),
        "nps_response_rate": metrics.ratio(agg.n("nps_answered"), agg.n("nps_sent")),
        "resolved": agg.n("resolved"), "repeat_contacts": agg.n("repeat_contact"),
        "repeat_contact_rate": metrics.ratio(agg.n("repeat_contact"), agg.n("resolved")),
        **_sentiment_row(agg),
    }


def _facts(params: ReportParams):
    lo, hi = params.utc_range
    return ConversationFact.objects.filter(last_resolved_at__gte=lo, last_resolved_at__lt=hi, **params.filters())


def _conversation_link(conversation_id: int, params: ReportParams) -> str | None:
    return f"/inbox/c/{conversation_id}/" if params.show_people else None


def sentiment_shift(params: ReportParams, limit: int = 15) -> dict:
    """Counted in SQL, and only the listed conversations fetched: 90 days are ~200k
    facts, which took ~0.5 s to build, label and sort in Python. (One statement
    scanning them once, a CTE read three times, measured slower than these three
    scans, which PostgreSQL runs in parallel.)"""
    facts = _facts(params).filter(first_sentiment__isnull=False, last_sentiment__isnull=False)
    # sentiment_label(v) == "negative" exactly when v <= NEGATIVE (POSITIVE is above it)
    first_negative, last_negative = Q(first_sentiment__lte=metrics.NEGATIVE), Q(last_sentiment__lte=metrics.NEGATIVE)
    counts = facts.aggregate(
        conversations=Count("pk"), turned_around=Count("pk", filter=first_negative & ~last_negative),
        worsened=Count("pk", filter=~first_negative & last_negative),
        stayed_negative=Count("pk", filter=first_negative & last_negative),
        shift_sum=Sum(F("last_sentiment") - F("first_sentiment")))
    shift_sum, n = counts.pop("shift_sum"), counts["conversations"]
    listed = facts.annotate(shift=F("last_sentiment") - F("first_sentiment")).values_list(
        "conversation_id", "channel", "first_sentiment", "last_sentiment", "inbound")

    def rows(order):
        return [{"conversation_id": cid, "link": _conversation_link(cid, params), "channel": channel,
                 "first": first, "last": last, "shift": last - first, "messages": inbound}
                for cid, channel, first, last, inbound in listed.order_by(*order)[:limit]] if n else []

    return {
        **counts, "mean_shift": (shift_sum / n) if n else None,
        # ties in shift by conversation id: one sorted list read from both ends
        "most_improved": rows(("-shift", "-conversation_id")), "most_worsened": rows(("shift", "conversation_id")),
    }


def customers_at_risk(params: ReportParams, limit: int = 50) -> list[dict]:
    lo, hi = params.utc_range
    qs = CustomerFact.objects.filter(last_contact_at__gte=lo, last_contact_at__lt=hi)
    if params.channel:
        qs = qs.filter(channel=params.channel)
    out = []
    # rows, not models: 2,000 instances cost ~25 ms more
    for customer_id, channel, recent, churn_words, last_contact_at, last_conversation_id in qs.order_by(
            "-last_contact_at").values_list("customer_id", "channel", "recent", "churn_words", "last_contact_at",
                                            "last_conversation_id")[:2000]:
        values = [v for _, v in recent]
        reasons = []
        if churn_words:
            reasons.append("churn words: " + ", ".join(churn_words))
        if len(values) >= 2 and all(v <= metrics.NEGATIVE for v in values[-2:]):
            reasons.append("last two messages negative")
        if len(values) >= 2 and values[-1] - values[0] <= -0.5:
            reasons.append(f"sentiment fell {values[0]:+.2f} → {values[-1]:+.2f}")
        if reasons:
            out.append({"customer_id": customer_id, "channel": channel, "reasons": reasons,
                        "last_sentiment": values[-1] if values else None,
                        "last_contact_at": last_contact_at.astimezone(params.tz).isoformat(),
                        "link": _conversation_link(last_conversation_id, params)})
    out.sort(key=lambda r: (-len(r["reasons"]), r["last_sentiment"] if r["last_sentiment"] is not None else 0))
    out = out[:limit]
    if params.show_people:
        from apps.contacts.models import Customer

        names = dict(Customer.objects.filter(pk__in=[r["customer_id"] for r in out]).values_list("pk", "name"))
        for r in out:
            r["customer"] = names.get(r["customer_id"], "")
    return out


def experience_report(*, params: ReportParams) -> dict:
    plan = _slice_plan(params)
    if plan:
        # the per-day series is the sentiment's: only its metrics are read per day
        groups, days = _slice_groups(plan, EXPERIENCE_METRICS, day_metrics=SENTIMENT_METRICS)
        figures = {
            "totals": _experience_row(groups.get(("", ""), Agg())),
            "by_channel": _slice_breakdown(groups, params, "channel", _experience_row),
            "sentiment_by_day": [{"day": d.isoformat(), **_sentiment_row(days.get(("", "", d)) or Agg())}
                                 for d in params.days]}
    else:
        rows = list(_rows(params, EXPERIENCE_METRICS))
        figures = {"totals": _experience_row(_group(rows, params, None).get("all", Agg())),
                   "by_channel": _breakdown(rows, params, "channel", _experience_row),
                   "sentiment_by_day": _breakdown(rows, params, "day", _sentiment_row)}
    return {
        "report": "experience", "params": params.as_dict(),
        "definitions": {k: DEFINITIONS[k] for k in ("csat", "ces", "nps", "sentiment", "shift", "repeat",
                                                    "at_risk", "periods")},
        **figures,
        "sentiment_shift": sentiment_shift(params),
        "customers_at_risk": customers_at_risk(params),
    }


# --- marketing ------------------------------------------------------------------

def _term_grain(params: ReportParams) -> str:
    """Day rows for UTC (whole UTC days), hour rows to regroup into local days."""
    return Grain.DAY if params.tz.key == "UTC" else Grain.HOUR


def _term_range(params: ReportParams) -> Q:
    """The range as whole UTC days (day rows) plus the hours of the partial days at
    its ends (hour rows): a 30-day Berlin range reads 29 day rows and 24 hour rows
    per term, not 720 hour rows. Only added, never subtracted: examples can't be."""
    lo, hi = params.utc_range
    inner_lo = metrics.floor_day(lo) + (dt.timedelta(days=1) if lo != metrics.floor_day(lo) else dt.timedelta())
    inner_hi = metrics.floor_day(hi)
    if inner_hi <= inner_lo:
        return Q(grain=Grain.HOUR, bucket__gte=lo, bucket__lt=hi)
    return (Q(grain=Grain.DAY, bucket__gte=inner_lo, bucket__lt=inner_hi)
            | Q(grain=Grain.HOUR, bucket__gte=lo, bucket__lt=inner_lo)
            | Q(grain=Grain.HOUR, bucket__gte=inner_hi, bucket__lt=hi))


def _term_rows(params: ReportParams, q: Q):
    qs = TermRollup.objects.filter(q)
    if params.channel:
        qs = qs.filter(channel=params.channel)
    if params.account_id:
        qs = qs.filter(account_id=params.account_id)
    return qs


TERM_SUMS = {"count": Sum("count"), "positive": Sum("positive"), "negative": Sum("negative"),
             "neutral": Sum("neutral")}


def themes_by_type(params: ReportParams, term_types, limit: int = 20) -> dict[str, list[dict]]:
    """The `limit` most frequent terms of each type, with their sentiment and example
    posts. The counts are summed in SQL (one row per term); only the listed terms'
    examples are fetched and merged (the strongest two each way are the same whether
    merged row by row or at once: a message is in one row of the range)."""
    rows = _term_rows(params, _term_range(params) & Q(term_type__in=list(term_types)))
    acc: dict = {t: [] for t in term_types}
    for term_type, term, count, pos, neg, neu in rows.values_list("term_type", "term").annotate(
            **TERM_SUMS).order_by():
        acc[term_type].append({"term": term, "count": count, "positive": pos, "negative": neg, "neutral": neu,
                               "examples": []})
    out = {}
    for term_type, found in acc.items():
        found.sort(key=lambda r: (-r["count"], r["term"]))
        out[term_type] = found[:limit]
    listed = {(t, r["term"]): r for t, found in out.items() for r in found}
    examples = defaultdict(list)
    if listed:
        for term_type, term, found in rows.filter(term__in={term for _, term in listed}).values_list(
                "term_type", "term", "examples"):
            if found and (term_type, term) in listed:
                examples[(term_type, term)].extend(found)
    for key, row in listed.items():
        row["examples"] = metrics.examples_merge([], examples.get(key, []))
        if not params.show_people:
            for e in row["examples"]:
                e.pop("conversation_id", None)
        row["net_sentiment"] = metrics.net_sentiment(row["positive"], row["negative"],
                                                     row["positive"] + row["negative"] + row["neutral"])
    return out


def themes(params: ReportParams, term_type: str, limit: int = 20) -> list[dict]:
    return themes_by_type(params, (term_type,), limit)[term_type]


def terms_by_day(params: ReportParams, term_type: str, terms: list[str]) -> list[dict]:
    """Volume and net sentiment per local day of the given terms, summed in SQL per
    local day (day rows in UTC; hour rows, each in the local day it starts in, elsewhere)."""
    lo, hi = params.utc_range
    acc = {}
    if terms:
        rows = _term_rows(params, Q(grain=_term_grain(params), term_type=term_type, term__in=terms, bucket__gte=lo,
                                    bucket__lt=hi))
        for day, term, count, pos, neg, neu in rows.annotate(day=TruncDate("bucket", tzinfo=params.tz)).values_list(
                "day", "term").annotate(**TERM_SUMS).order_by():
            acc[(day, term)] = (count, pos, neg, pos + neg + neu)
    empty = (0, 0, 0, 0)
    out = []
    for term in terms:
        for day in params.days:
            count, pos, neg, scored = acc.get((day, term), empty)
            out.append({"day": day.isoformat(), "term": term, "messages": count,
                        "net_sentiment": metrics.net_sentiment(pos, neg, scored)})
    return out


def _sentiment_series(params: ReportParams) -> dict:
    """Totals, by day, by channel x day, by account and by account x day."""
    plan = _slice_plan(params)
    if plan:
        groups, days = _slice_groups(plan, SENTIMENT_METRICS)
        if plan.fdim in HOUR_SLICE_FILTERS:
            _channel_account_days_add(params, plan, days)
        else:
            _full_days_add(params, SENTIMENT_METRICS, days)
        by_account = _slice_breakdown(groups, params, "account", _sentiment_row)
        accounts = {r["account_id"]: r["account"] for r in by_account}  # labels looked up once
        return {
            "totals": _sentiment_row(groups.get(("", ""), Agg())),
            "by_day": [{"day": d.isoformat(), **_sentiment_row(days.get(("", "", d)) or Agg())} for d in params.days],
            "by_channel_day": [{"channel": c, "day": d.isoformat(),
                                **_sentiment_row(days.get(("channel", c, d)) or Agg())}
                               for c in sorted(k for dim, k in groups if dim == "channel") for d in params.days],
            "by_account": by_account,
            "by_account_day": [{"account": label, "day": d.isoformat(),
                                **_sentiment_row(days.get(("account", str(a), d)) or Agg())}
                               for a, label in sorted(accounts.items()) for d in params.days],
        }
    rows = list(_rows(params, SENTIMENT_METRICS))
    by_channel_day, by_account_day = [], []
    for channel in sorted({r[2] for r in rows}):
        sub = [r for r in rows if r[2] == channel]
        for row in _breakdown(sub, params, "day", _sentiment_row):
            by_channel_day.append({"channel": channel, **row})
    accounts = _labels("account", {r[3] for r in rows}, params.show_people)
    for account_id in sorted(accounts):
        sub = [r for r in rows if r[3] == account_id]
        for row in _breakdown(sub, params, "day", _sentiment_row):
            by_account_day.append({"account": accounts[account_id], **row})
    return {"totals": _sentiment_row(_group(rows, params, None).get("all", Agg())),
            "by_day": _breakdown(rows, params, "day", _sentiment_row), "by_channel_day": by_channel_day,
            "by_account": _breakdown(rows, params, "account", _sentiment_row), "by_account_day": by_account_day}


def _channel_account_days_add(params: ReportParams, plan: SlicePlan, days: dict) -> None:
    """The per-day series by channel and by account: the channel-and-account hour slices of
    the plan's filter (or none) summed per local day in SQL, each hour in the local day it
    starts in (as the slice plan counts them): a few rows an hour (90 days in Los Angeles,
    ~43k rows) where the day slices plus each day's edge hours took ~0.45 s of Python, and a
    filter's full hour rows a scan of the whole rollup table."""
    lo, hi = params.utc_range
    rows = MetricSlice.objects.filter(grain=SliceGrain.HOUR, fdim=plan.fdim, fkey=plan.fkey, dim=CHANNEL_ACCOUNT,
                                      metric__in=SENTIMENT_METRICS, bucket__gte=lo, bucket__lt=hi)
    for day, key, metric, c, t in (rows.annotate(day=TruncDate("bucket", tzinfo=params.tz))
                                   .values_list("day", "key", "metric").annotate(c=Sum("count"), t=Sum("total"))
                                   .order_by()):
        channel, account_id = key.rsplit("|", 1)
        days[("channel", channel, day)].add(metric, c, t, None)
        days[("account", account_id, day)].add(metric, c, t, None)


def _full_days_add(params: ReportParams, metric_names, days: dict) -> None:
    """An agent's per-day series by channel and by account (agents have no hour slices): its
    full rows of the count metrics summed per local day, channel and account in SQL (day rows in
    UTC; elsewhere hour rows, each in the local day it starts in, as the slice plan counts them),
    read through the agent index."""
    lo, hi = params.utc_range
    grain = Grain.DAY if params.tz.key == "UTC" else Grain.HOUR
    rows = MetricRollup.objects.filter(grain=grain, bucket__gte=lo, bucket__lt=hi, metric__in=list(metric_names),
                                       **params.filters())
    for day, channel, account_id, metric, c, t in (
            rows.annotate(day=TruncDate("bucket", tzinfo=params.tz)).values_list("day", "channel", "account_id", "metric")
            .annotate(c=Sum("count"), t=Sum("total")).order_by()):
        days[("channel", channel, day)].add(metric, c, t, None)
        days[("account", str(account_id), day)].add(metric, c, t, None)


def marketing_report(*, params: ReportParams) -> dict:
    series = _sentiment_series(params)
    found = themes_by_type(params, ("topic", "hashtag", "keyword"))
    topics, hashtags, keywords = found["topic"], found["hashtag"], found["keyword"]
    min_count = 2
    ranked = [t for t in topics if t["net_sentiment"] is not None and t["count"] >= min_count]
    lo, hi = params.utc_range
    alerts = SpikeAlert.objects.filter(bucket__gte=lo, bucket__lt=hi)
    if params.channel:
        alerts = alerts.filter(channel=params.channel)
    return {
        "report": "marketing", "params": params.as_dict(),
        "definitions": {k: DEFINITIONS[k] for k in ("sentiment", "themes", "spikes", "periods")},
        **series,
        "topics": topics, "hashtags": hashtags, "keywords": keywords,
        "topics_by_day": terms_by_day(params, "topic", [t["term"] for t in topics[:6]]),
        "hashtags_by_day": terms_by_day(params, "hashtag", [t["term"] for t in hashtags[:6]]),
        "keywords_by_day": terms_by_day(params, "keyword", [t["term"] for t in keywords[:6]]),
        "top_positive": sorted(ranked, key=lambda t: (-t["net_sentiment"], -t["count"]))[:5],
        "top_negative": sorted(ranked, key=lambda t: (t["net_sentiment"], -t["count"]))[:5],
        "alerts": [{"id": a.pk, "kind": a.kind, "channel": a.channel, "hour": a.bucket.astimezone(params.tz).isoformat(),
                    "value": a.value, "baseline": a.baseline, "message": a.message} for a in alerts[:50]],
    }


# --- gap ------------------------------------------------------------------------

def _gap_kinds() -> tuple[Q, Q]:
    """Service met but experience bad, and missed but good, as conditions on the
    facts (DEFINITIONS["gap"]), so the database counts them instead of Python
    building every resolved conversation of the range."""
    target = getattr(settings, "REPORTS_GAP_FRT_TARGET_SECONDS", 3600)
    decided = Q(sla_met__gt=0) | Q(sla_breached__gt=0)
    met = (decided & Q(sla_breached=0)) | (~decided & Q(first_response_seconds__lte=target))
    bad = Q(last_sentiment__lte=metrics.NEGATIVE) | Q(csat__lte=2)
    good = ~bad & (Q(last_sentiment__gte=metrics.POSITIVE) | Q(csat__gte=4))
    return met & bad, ~met & good


# Grouped by the tag list first (a few hundred distinct lists), then unnested: unnesting
# every row made PostgreSQL estimate millions of rows and spend ~0.7 s compiling it (JIT).
GAP_TERMS_SQL = """
WITH g AS (
  SELECT f.tags, f.topics, GROUPING(f.tags) AS by_topic, count(*) AS n,
         count(*) FILTER (WHERE f.met_bad) AS met_bad, count(*) FILTER (WHERE f.missed_good) AS missed_good
  FROM ({facts}) f GROUP BY GROUPING SETS ((f.tags), (f.topics))
)
SELECT CASE WHEN by_topic = 0 THEN 'tag' ELSE 'topic' END, t.name, sum(n)::int, sum(met_bad)::int,
       sum(missed_good)::int
FROM g CROSS JOIN LATERAL jsonb_array_elements_text(CASE
    WHEN by_topic = 0 THEN CASE WHEN jsonb_array_length(tags) = 0 THEN '["(no tag)"]'::jsonb ELSE tags END
    ELSE CASE WHEN jsonb_array_length(topics) = 0 THEN '["(no topic)"]'::jsonb ELSE topics END END) AS t(name)
GROUP BY 1, 2
"""
GAP_NONE = {"tag": "(no tag)", "topic": "(no topic)"}


def _gap_counts() -> dict:
    return {"conversations": 0, "met_but_bad": 0, "missed_but_good": 0}


def _gap_terms(facts) -> dict:
    """{"tag": {name: counts}, "topic": ...}: a conversation counts under each of its
    tags. In SQL on PostgreSQL; on the embedded SQLite in Python (its small data sets)."""
    from django.db import connection

    out = {g: defaultdict(_gap_counts) for g in GAP_NONE}
    rows = facts.values_list("tags", "topics", "met_bad", "missed_good").order_by()
    if connection.vendor == "postgresql":
        sql, params = rows.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(GAP_TERMS_SQL.format(facts=sql), params)
            for group, name, n, met_bad, missed_good in cursor.fetchall():
                out[group][name] = {"conversations": n, "met_but_bad": met_bad, "missed_but_good": missed_good}
        return out
    for tags, topics, met_bad, missed_good in rows:
        for group, names in (("tag", tags), ("topic", topics)):
            for name in names or [GAP_NONE[group]]:
                out[group][name]["conversations"] += 1
                out[group][name]["met_but_bad"] += bool(met_bad)
                out[group][name]["missed_but_good"] += bool(missed_good)
    return out


def gap_report(*, params: ReportParams, limit: int = 100) -> dict:
    """Counted by the database (one grouped query, one for tags and topics); only the
    listed conversations are fetched: 5 queries whatever the range."""
    met_bad, missed_good = _gap_kinds()
    facts = _facts(params).annotate(met_bad=ExpressionWrapper(met_bad, output_field=BooleanField()),
                                    missed_good=ExpressionWrapper(missed_good, output_field=BooleanField()))
    cells = list(_facts(params).values("channel", "queue_id").order_by().annotate(
        conversations=Count("pk"), met_but_bad=Count("pk", filter=met_bad),
        missed_but_good=Count("pk", filter=missed_good)))
    lists = {kind: list(_facts(params).filter(cond).order_by("-last_resolved_at", "conversation_id")[:limit])
             for kind, cond in (("met_but_bad", met_bad), ("missed_but_good", missed_good))}
    queues = _labels("queue", {*(c["queue_id"] for c in cells), *(f.queue_id for rows in lists.values()
                                                                  for f in rows)}, params.show_people)
    totals = _gap_counts()
    groups = {"channel": defaultdict(_gap_counts), "queue": defaultdict(_gap_counts), **_gap_terms(facts)}
    for cell in cells:
        # two queues may share a name: one row for the name, as the page shows it
        for target in (totals, groups["channel"][cell["channel"]], groups["queue"][queues.get(cell["queue_id"],
                                                                                              "(none)")]):
            for k in totals:
                target[k] += cell[k]

    def row(fact):
        return {"conversation_id": fact.conversation_id, "link": _conversation_link(fact.conversation_id, params),
                "channel": fact.channel, "queue": queues.get(fact.queue_id, "(none)"), "tags": fact.tags,
                "topics": fact.topics, "first_response_seconds": fact.first_response_seconds,
                "sla_met": fact.sla_met, "sla_breached": fact.sla_breached,
                "last_sentiment": fact.last_sentiment, "csat": fact.csat,
                "resolved_at": fact.last_resolved_at.astimezone(params.tz).isoformat()}

    grouped = {g: sorted(({"name": n, **v} for n, v in d.items()), key=lambda r: (-r["met_but_bad"], r["name"]))
               for g, d in groups.items()}
    return {
        "report": "gap", "params": params.as_dict(), "definitions": {"gap": DEFINITIONS["gap"],
                                                                     "periods": DEFINITIONS["periods"]},
        "totals": totals,
        "by_channel": grouped["channel"], "by_queue": grouped["queue"], "by_tag": grouped["tag"],
        "by_topic": grouped["topic"],
        "met_but_bad": [row(f) for f in lists["met_but_bad"]],
        "missed_but_good": [row(f) for f in lists["missed_but_good"]],
    }


REPORTS = {"service": service_report, "experience": experience_report, "marketing": marketing_report,
           "gap": gap_report}


def report_build(*, name: str, params: ReportParams) -> dict:
    return REPORTS[name](params=params)


def alerts_recent(limit: int = 10):
    return list(SpikeAlert.objects.filter(acknowledged_at__isnull=True)[:limit])


__all__ = ["ReportParams", "report_build", "REPORTS", "Q"]
