"""Pure calculations behind the reports: no database, no Django models.

Percentiles interpolate linearly between ranks (numpy's default), so the
median of an even count is the mean of the two middle values."""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from zoneinfo import ZoneInfo

# The scorer's precision: every stored compound is a multiple of 0.0001, and so is every exact sum of them.
from apps.insights.sentiment import COMPOUND_DECIMALS

POSITIVE = 0.05
NEGATIVE = -0.05


def percentile(values: Iterable[float], q: float) -> float | None:
    data = sorted(values)
    if not data:
        return None
    if len(data) == 1:
        return float(data[0])
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return float(data[lo] + (data[hi] - data[lo]) * (pos - lo))


def summary(values: list[float]) -> dict:
    """count, mean, median and p90 of a list of durations or scores."""
    n = len(values)
    return {
        "count": n,
        "mean": (sum(values) / n) if n else None,
        "median": percentile(values, 50),
        "p90": percentile(values, 90),
    }


# Histograms for percentiles over large ranges: bin 0 is [0, 1) s, bin b >= 1 is
# [1.05^(b-1), 1.05^b): a median read from them is within ~2.5% of the exact one.
HIST_BASE = 1.05
EXACT_MAX = 200  # groups with at most this many values get exact percentiles


def hist_bin(value: float) -> int:
    if value < 1:
        return 0
    return int(math.floor(math.log(value) / math.log(HIST_BASE))) + 1


def hist_score(b: int) -> int:
    """The integer whose bin is `b` (exact below 20, where bins are narrower than 1)."""
    return 0 if int(b) == 0 else math.ceil(HIST_BASE ** (int(b) - 1) - 1e-9)


def hist_percentile(hist: dict, q: float) -> float | None:
    """Percentile of a histogram {bin: count}, ranks spread evenly inside a bin."""
    return _bins_percentile(sorted((int(b), n) for b, n in hist.items() if n), q)


def _bins_percentile(bins: list[tuple[int, int]], q: float) -> float | None:
    n = sum(c for _, c in bins)
    if not n:
        return None
    rank = (n - 1) * q / 100.0
    seen = 0
    for b, c in bins:
        if rank < seen + c:
            lo, hi = (0.0, 1.0) if b == 0 else (HIST_BASE ** (b - 1), HIST_BASE ** b)
            return lo + (hi - lo) * (rank - seen + 0.5) / c
        seen += c
    return None


def hist_summary(hist: dict, count: int, total: float) -> dict:
    """As summary(), from a histogram: the bins sorted once for both percentiles."""
    bins = sorted((int(b), n) for b, n in hist.items() if n)
    return {"count": count, "mean": (total / count) if count else None,
            "median": _bins_percentile(bins, 50), "p90": _bins_percentile(bins, 90)}


def ratio(numerator: float, denominator: float) -> float | None:
    return (numerator / denominator) if denominator else None


def sentiment_label(compound: float | None) -> str:
    if compound is None:
        return "not_scored"
    if compound >= POSITIVE:
        return "positive"
    if compound <= NEGATIVE:
        return "negative"
    return "neutral"


def net_sentiment(positive: int, negative: int, scored: int) -> float | None:
    """%positive - %negative of the scored messages, in points (-100..100)."""
    if not scored:
        return None
    return 100.0 * (positive - negative) / scored


def mean_compound(total: float, scored: int) -> float | None:
    """The mean of `scored` compound scores whose float sum is `total`. A float sum depends on
    the order it was added up in: the rollup rows' totals are summed by PostgreSQL in the order
    it reads the rows (their place in the table, which an update or a rebuild moves), and a row's
    own total in the order its batches came (a score added and taken out again by a spam mark is
    not always an exact 0). Those differ by a few units in the last place, so the same messages
    read before and after `reports_rebuild` gave means one bit apart (-0.07074285714285714 and
    -0.07074285714285715). The exact sum is on the scores' grid (0.0001) and the error is
    ~1e-15 of it: rounded to the grid, it is that exact sum whatever the order."""
    if not scored:
        return None
    return round(total, COMPOUND_DECIMALS) / scored


def csat_score(scores: list[float]) -> float | None:
    """Share of 4-5 answers, in percent."""
    return 100.0 * sum(1 for s in scores if s >= 4) / len(scores) if scores else None


def nps_score(scores: list[float]) -> float | None:
    """Promoters (9-10) minus detractors (0-6), in points."""
    if not scores:
        return None
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    return 100.0 * (promoters - detractors) / len(scores)


# --- time ---------------------------------------------------------------------

def floor_hour(moment: dt.datetime) -> dt.datetime:
    moment = moment.astimezone(dt.timezone.utc)
    return moment.replace(minute=0, second=0, microsecond=0)


QUARTER = dt.timedelta(minutes=15)
HOUR = dt.timedelta(hours=1)


def floor_quarter(moment: dt.datetime) -> dt.datetime:
    """The UTC quarter hour `moment` is in: every zone's offset since 1972 is a multiple of 15
    minutes, so a local midnight is always a quarter's start."""
    moment = moment.astimezone(dt.timezone.utc)
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


def hour_ceil(moment: dt.datetime) -> dt.datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def quarters(lo: dt.datetime, hi: dt.datetime) -> list[dt.datetime]:
    """The quarter buckets of [lo, hi) (both quarter starts)."""
    out = []
    while lo < hi:
        out.append(lo)
        lo += QUARTER
    return out


def local_midnights(start: dt.date, end: dt.date, tz: ZoneInfo) -> list[dt.datetime]:
    """The UTC instants at which the local days start+1 .. end begin: the cuts inside the range."""
    return [dt.datetime.combine(start + dt.timedelta(days=i), dt.time.min, tzinfo=tz).astimezone(dt.timezone.utc)
            for i in range(1, (end - start).days + 1)]


def bucket_cover(lo: dt.datetime, hi: dt.datetime, cuts=()) -> tuple[dt.datetime, dt.datetime, list, list]:
    """[lo, hi) as UTC hour buckets and quarter buckets, none across any of `cuts` (local
    midnights): (first hour, end of the hours, the hours in between to skip, the quarters).
    The hours [a, b) but the skipped ones, plus the quarters, are exactly [lo, hi): an hour
    holding a local midnight that is not a whole hour (India, Nepal, Newfoundland, South
    Australia) is read as its four quarters; a whole-hour zone reads hours only."""
    a, b = hour_ceil(lo), floor_hour(hi)
    if b <= a:  # no whole hour inside: quarters only
        return a, a, [], quarters(lo, hi)
    split = sorted({floor_hour(c) for c in cuts if lo < c < hi and c != floor_hour(c)})
    out = quarters(lo, a) + [q for h in split for q in quarters(h, h + HOUR)] + quarters(b, hi)
    return a, b, split, out


def floor_day(moment: dt.datetime) -> dt.datetime:
    return floor_hour(moment).replace(hour=0)


def floor_week(moment: dt.datetime) -> dt.datetime:
    """Monday 00:00 UTC of the ISO week `moment` is in."""
    day = floor_day(moment)
    return day - dt.timedelta(days=day.weekday())


def local_day(moment: dt.datetime, tz: ZoneInfo) -> dt.date:
    return moment.astimezone(tz).date()


def local_range_utc(start: dt.date, end: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """[start 00:00, end+1 00:00) local, as UTC instants (DST-aware)."""
    lo = dt.datetime.combine(start, dt.time.min, tzinfo=tz).astimezone(dt.timezone.utc)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz).astimezone(dt.timezone.utc)
    return lo, hi


def whole_hour_offsets(tz: ZoneInfo, start: dt.datetime, end: dt.datetime) -> bool:
    """True when hourly UTC buckets map exactly onto local days in [start, end)."""
    probe = start
    while probe <= end:
        off = probe.astimezone(tz).utcoffset() or dt.timedelta()
        if off.total_seconds() % 3600:
            return False
        probe += dt.timedelta(days=30)
    off = end.astimezone(tz).utcoffset() or dt.timedelta()
    return not off.total_seconds() % 3600


def business_seconds(start: dt.datetime, end: dt.datetime, *, tz: ZoneInfo, days: Iterable[int] = (0, 1, 2, 3, 4),
                     opens: dt.time = dt.time(9), closes: dt.time = dt.time(17),
                     holidays: Iterable[dt.date] = ()) -> float:
    """Seconds of [start, end) that fall inside business hours (local time in
    `tz`, weekdays `days` with Monday=0, minus holidays)."""
    if end <= start:
        return 0.0
    days, holidays = set(days), set(holidays)
    total = 0.0
    day = start.astimezone(tz).date()
    last = end.astimezone(tz).date()
    while day <= last:
        if day.weekday() in days and day not in holidays:
            lo = dt.datetime.combine(day, opens, tzinfo=tz)
            hi = dt.datetime.combine(day, closes, tzinfo=tz)
            a, b = max(lo, start), min(hi, end)
            if b > a:
                total += (b - a).total_seconds()
        day += dt.timedelta(days=1)
    return total


# --- alerts -------------------------------------------------------------------

def spike_check(current: float, history: list[float], *, factor: float, min_value: float) -> tuple[bool, float]:
    """A spike: current >= min_value and >= factor x the mean of history.
    Returns (spiked, baseline)."""
    baseline = (sum(history) / len(history)) if history else 0.0
    return current >= min_value and current >= factor * max(baseline, 1.0), baseline


def negative_jump(current_neg: int, current_scored: int, hist_neg: int, hist_scored: int, *,
                  points: float, min_scored: int) -> tuple[bool, float, float]:
    """Negative share of this hour vs the baseline hours, in percent points."""
    if current_scored < min_scored:
        return False, 0.0, 0.0
    now = 100.0 * current_neg / current_scored
    base = 100.0 * hist_neg / hist_scored if hist_scored else 0.0
    return now - base >= points, now, base


# --- what the rollups keep (services writes them, selectors read them) -------------------

VALUE_METRICS = {"first_response", "first_response_bh", "reply", "reply_bh", "resolved", "resolved_bh",
                 "handle", "csat", "ces", "nps", "first_response_conv", "first_response_conv_bh", "resolution_full",
                 "resolution_full_bh"}

# Marks in the metric events: a conversation is out of every metric from its "spam" mark to its "unspam"
# (spam_marks.spam_filter). Repeat contact: a customer message within this window after a resolution.
SPAM_MARKS = ("spam", "unspam")
REPEAT_WINDOW = dt.timedelta(days=7)

# The hour slices' filters: not agent (tens of keys an hour; one agent's full hour rows are few).
HOUR_SLICE_FILTERS = ("", "channel", "account", "queue", "team")

# The marketing report's per-day series by channel and by account (marketing_report._sentiment_series):
# hour slices of these count metrics per channel and account together (dim CHANNEL_ACCOUNT, key
# "<channel>|<account id>"), unfiltered and for each HOUR_SLICE_FILTERS value, so a range's local
# days are one GROUP BY over a few rows an hour instead of a filter's every full hour row.
CHANNEL_ACCOUNT = "chan_acc"
CHANNEL_ACCOUNT_METRICS = ("msg_in", "sentiment", "msg_in_positive", "msg_in_negative", "msg_in_neutral")


def examples_merge(current: list, new: list, keep: int = 2) -> list:
    """The sentiment examples a rollup row keeps: the `keep` most negative and most positive
    messages of both lists, each once (by message id)."""
    pool = {e["message_id"]: e for e in [*current, *new]}.values()
    negative = sorted((e for e in pool if e["sentiment"] <= NEGATIVE), key=lambda e: (e["sentiment"], e["message_id"]))
    positive = sorted((e for e in pool if e["sentiment"] >= POSITIVE), key=lambda e: (-e["sentiment"], e["message_id"]))
    return negative[:keep] + positive[:keep]
