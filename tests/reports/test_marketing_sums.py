"""The marketing report's themes and terms by day are summed in SQL (one row per
term, one per term and local day) and only the listed terms' examples are merged:
the same report as the row-by-row reading it replaced, over whole weeks, partial
weeks, filters and time zones (whole-hour, across a DST change, and half-hour)."""
import datetime as dt
import random
from collections import defaultdict
from zoneinfo import ZoneInfo

import pytest

from apps.reports import metrics, selectors, services
from apps.reports.models import MetricEvent, TermRollup
from apps.reports.services import _example_merge

from .test_slices import WEEK_RANGES, _same, _strip, full_rows

HASHTAGS = [f"#tag{i:02d}" for i in range(30)]  # more than the 20 listed: the cut and ties in count matter
TOPICS = ["billing", "delivery", "outage", "login", "refund", "app", "price"]
KEYWORDS = ["cancel", "slow", "love"]


def _term_history(n: int, seed: int) -> None:
    """`n` customer messages over five weeks (5 October - 8 November 2026, every hour
    of the day) in two channels and accounts, each with topics, hashtags and keywords,
    scored or not, positive, negative or neutral."""
    rng = random.Random(seed)
    start = dt.datetime(2026, 10, 5, tzinfo=dt.timezone.utc)
    events = []
    for i in range(n):
        at = start + dt.timedelta(minutes=rng.randrange(35 * 24 * 60))
        channel, account = rng.choice([("twitter", 1), ("demo", 2)])
        value = None if i % 7 == 0 else rng.choice([rng.uniform(-1, 1), 0.0, rng.uniform(0.05, 1)])
        data = {"topics": rng.sample(TOPICS, rng.randint(0, 2)),
                # skewed: a few frequent tags, a long tail of rare ones
                "hashtags": sorted({HASHTAGS[min(int(rng.expovariate(0.15)), 29)] for _ in range(rng.randint(0, 3))}),
                "keywords": rng.sample(KEYWORDS, rng.randint(0, 1)), "message_id": 10_000 + i,
                "excerpt": f"post {i}"}
        events.append(MetricEvent(key=f"in:{i}", kind="msg_in", occurred_at=at, conversation_id=i + 1, cycle=1,
                                  channel=channel, account_id=account, queue_id=1, team_id=1, agent_id=1,
                                  customer_id=i + 1, value=value, data=data))
    MetricEvent.objects.bulk_create(events)
    services.rollups_apply()


# The reading before (apps/reports/selectors.py up to item 20): every term row of the
# range in Python, examples merged row by row; terms by day from every row.

def themes_row_by_row(params, term_type, limit=20):
    qs = TermRollup.objects.filter(selectors._term_range(params), term_type=term_type)
    if params.channel:
        qs = qs.filter(channel=params.channel)
    if params.account_id:
        qs = qs.filter(account_id=params.account_id)
    acc = {}
    for term, count, pos, neg, neu, total, examples in qs.values_list(
            "term", "count", "positive", "negative", "neutral", "total", "examples"):
        row = acc.setdefault(term, {"term": term, "count": 0, "positive": 0, "negative": 0, "neutral": 0,
                                    "total": 0.0, "examples": []})
        row["count"] += count
        row["positive"] += pos
        row["negative"] += neg
        row["neutral"] += neu
        row["total"] += total
        row["examples"] = _example_merge(row["examples"], examples)
    out = []
    for row in acc.values():
        scored = row["positive"] + row["negative"] + row["neutral"]
        row["net_sentiment"] = metrics.net_sentiment(row["positive"], row["negative"], scored)
        row.pop("total")
        if not params.show_people:
            for e in row["examples"]:
                e.pop("conversation_id", None)
        out.append(row)
    out.sort(key=lambda r: (-r["count"], r["term"]))
    return out[:limit]


def terms_by_day_row_by_row(params, term_type, terms):
    lo, hi = params.utc_range
    grain = "d" if params.tz.key == "UTC" else "h"
    qs = TermRollup.objects.filter(grain=grain, term_type=term_type, term__in=terms, bucket__gte=lo, bucket__lt=hi)
    if params.channel:
        qs = qs.filter(channel=params.channel)
    if params.account_id:
        qs = qs.filter(account_id=params.account_id)
    acc = defaultdict(lambda: [0, 0, 0, 0])
    for bucket, term, count, pos, neg, neu in qs.values_list("bucket", "term", "count", "positive", "negative",
                                                            "neutral"):
        row = acc[(bucket.astimezone(params.tz).date(), term)]
        row[0] += count
        row[1] += pos
        row[2] += neg
        row[3] += pos + neg + neu
    return [{"day": day.isoformat(), "term": term, "messages": acc[(day, term)][0],
             "net_sentiment": metrics.net_sentiment(acc[(day, term)][1], acc[(day, term)][2], acc[(day, term)][3])}
            for term in terms for day in params.days]


PARTS = (("topic", "topics"), ("hashtag", "hashtags"), ("keyword", "keywords"))


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Pacific/Auckland", "Asia/Kolkata"])
def test_marketing_themes_and_terms_by_day_equal_the_row_by_row_reading(zone):
    _term_history(900, seed=13)
    assert TermRollup.objects.filter(term_type="hashtag", grain="d").values("term").distinct().count() > 20
    cases = [{}, {"channel": "twitter"}, {"account_id": 2}]
    ties = False
    for start, end in WEEK_RANGES:
        for filters in cases:
            for show_people in (False, True):
                params = selectors.ReportParams(start=start, end=end, tz=ZoneInfo(zone), show_people=show_people,
                                                **filters)
                report = selectors.marketing_report(params=params)
                where = f"{start}..{end} {filters} {zone}"
                for term_type, part in PARTS:
                    want = themes_row_by_row(params, term_type)
                    assert report[part] == want, f"{part} {where}"
                    ties |= any(a["count"] == b["count"] for a, b in zip(want, want[1:]))  # ordered by term
                    assert report[f"{part}_by_day"] == terms_by_day_row_by_row(
                        params, term_type, [t["term"] for t in want[:6]]), f"{part}_by_day {where}"
    # the history's themes are not trivial: the cut at 20, examples both ways, sentiment
    params = selectors.ReportParams(start=dt.date(2026, 10, 5), end=dt.date(2026, 11, 8), tz=ZoneInfo(zone),
                                    show_people=False)
    hashtags = selectors.marketing_report(params=params)["hashtags"]
    assert len(hashtags) == 20 and any(len(t["examples"]) == 4 for t in hashtags)
    assert ties
    assert all("conversation_id" not in e for t in hashtags for e in t["examples"])


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "Pacific/Auckland"])
def test_marketing_report_over_weeks_equals_the_full_rows(zone):
    """The sentiment series (metric sums as columns, one row per key and day) against
    the full rollup rows, over whole weeks, partial weeks and beyond the data."""
    _term_history(600, seed=21)
    for start, end in WEEK_RANGES:
        params = selectors.ReportParams(start=start, end=end, tz=ZoneInfo(zone), show_people=False)
        sliced = selectors.marketing_report(params=params)
        with full_rows():
            full = selectors.marketing_report(params=params)
        _same(_strip(sliced), _strip(full), f"marketing {start}..{end} {zone}")
        assert sum(r["messages"] for r in sliced["by_day"]) == sliced["totals"]["messages"]
