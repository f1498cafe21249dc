"""Report parts summed in SQL instead of row by row in Python (docs/performance-history.md
item 21): the marketing report's themes (one row per term; only the listed terms'
examples merged) and terms by day (one row per term and local day), the experience
report's sentiment shift (counts and the two lists in SQL). Each equals the row-by-row
reading it replaced, over whole weeks, partial weeks, filters and time zones
(whole-hour, across a DST change, half-hour)."""
import datetime as dt
import random
from collections import defaultdict
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from apps.reports import marketing_report, metrics, rollups, selectors, slice_reader
from apps.reports.metrics import examples_merge
from apps.reports.models import MetricEvent, TermRollup

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
        # a compound score has 4 decimals, as the scorer stores it
        value = None if i % 7 == 0 else round(rng.choice([rng.uniform(-1, 1), 0.0, rng.uniform(0.05, 1)]), 4)
        data = {"topics": rng.sample(TOPICS, rng.randint(0, 2)),
                # skewed: a few frequent tags, a long tail of rare ones
                "hashtags": sorted({HASHTAGS[min(int(rng.expovariate(0.15)), 29)] for _ in range(rng.randint(0, 3))}),
                "keywords": rng.sample(KEYWORDS, rng.randint(0, 1)), "message_id": 10_000 + i,
                "excerpt": f"post {i}"}
        events.append(MetricEvent(key=f"in:{i}", kind="msg_in", occurred_at=at, conversation_id=i + 1, cycle=1,
                                  channel=channel, account_id=account, queue_id=1, team_id=1, agent_id=1,
                                  customer_id=i + 1, value=value, data=data))
    MetricEvent.objects.bulk_create(events)
    rollups.rollups_apply()


# The reading before (apps/reports/selectors.py up to item 20): every term row of the
# range in Python, examples merged row by row; terms by day from every row.

def themes_row_by_row(params, term_type, limit=20):
    qs = TermRollup.objects.filter(marketing_report._term_range(params), term_type=term_type)
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
        row["examples"] = examples_merge(row["examples"], examples)
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
    # quarter-hour rows: a local day starts on the quarter hour in every zone (Kolkata: :30)
    grain = "d" if params.tz.key == "UTC" else "q"
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


# --- experience: sentiment shift counted in SQL, customers at risk read as rows --------

def sentiment_shift_row_by_row(params, limit=15):
    """The reading before: every fact of the range labelled and sorted in Python."""
    facts = list(slice_reader.conversation_facts(params).filter(first_sentiment__isnull=False, last_sentiment__isnull=False)
                 .values_list("conversation_id", "channel", "first_sentiment", "last_sentiment", "inbound"))
    turned, worsened, stayed = 0, 0, 0
    rows = []
    for cid, channel, first, last, inbound in facts:
        f, l_ = metrics.sentiment_label(first), metrics.sentiment_label(last)
        if f == "negative" and l_ != "negative":
            turned += 1
        elif f != "negative" and l_ == "negative":
            worsened += 1
        elif f == l_ == "negative":
            stayed += 1
        rows.append({"conversation_id": cid, "link": slice_reader.conversation_link(cid, params), "channel": channel,
                     "first": first, "last": last, "shift": last - first, "messages": inbound})
    shifts = [r["shift"] for r in rows]
    rows.sort(key=lambda r: (r["shift"], r["conversation_id"]))
    return {"conversations": len(rows), "turned_around": turned, "worsened": worsened, "stayed_negative": stayed,
            "mean_shift": (sum(shifts) / len(shifts)) if shifts else None,
            "most_improved": list(reversed(rows[-limit:])) if rows else [], "most_worsened": rows[:limit]}


@pytest.mark.django_db
def test_sentiment_shift_and_customers_at_risk_equal_the_row_by_row_reading():
    from apps.reports.models import ConversationFact, CustomerFact

    rng = random.Random(17)
    start = dt.datetime(2026, 10, 5, tzinfo=dt.timezone.utc)
    # on the thresholds, either side of them, ties in shift, unscored ends
    scores = [-0.05, 0.05, -0.0499, -0.0501, 0.0, -1.0, 1.0, 0.5, -0.5, None]
    facts, customers = [], []
    for i in range(600):
        first, last = rng.choice(scores + [rng.uniform(-1, 1)]), rng.choice(scores + [rng.uniform(-1, 1)])
        at = start + dt.timedelta(minutes=rng.randrange(35 * 24 * 60))
        facts.append(ConversationFact(conversation_id=i + 1, channel=rng.choice(["twitter", "demo"]),
                                      account_id=1 + i % 2, queue_id=1 + i % 3, customer_id=i + 1,
                                      last_resolved_at=at, first_sentiment=first, last_sentiment=last,
                                      inbound=rng.randint(1, 9)))
        recent = [[f"k{j}", rng.choice(scores[:-1])] for j in range(rng.randint(0, 4))]
        customers.append(CustomerFact(customer_id=i + 1, recent=recent, last_contact_at=at, last_conversation_id=i + 1,
                                      churn_words=["cancel"] if i % 11 == 0 else [], channel=facts[-1].channel))
    ConversationFact.objects.bulk_create(facts)
    CustomerFact.objects.bulk_create(customers)
    for (first_day, last_day), zone, filters in [((dt.date(2026, 10, 5), dt.date(2026, 11, 8)), "UTC", {}),
                                                 ((dt.date(2026, 10, 7), dt.date(2026, 10, 20)), "Europe/Berlin", {}),
                                                 ((dt.date(2026, 10, 5), dt.date(2026, 11, 8)), "UTC", {"queue_id": 2}),
                                                 ((dt.date(2026, 10, 5), dt.date(2026, 11, 8)), "UTC",
                                                  {"channel": "demo"}),
                                                 ((dt.date(2026, 12, 1), dt.date(2026, 12, 3)), "UTC", {})]:
        for show_people in (True, False):
            params = selectors.ReportParams(start=first_day, end=last_day, tz=ZoneInfo(zone),
                                            show_people=show_people, **filters)
            got, want = selectors.sentiment_shift(params), sentiment_shift_row_by_row(params)
            mean, want_mean = got.pop("mean_shift"), want.pop("mean_shift")
            assert got == want, (first_day, zone, filters)
            # the same sum, added by the database: equal but for the order of ~hundreds of additions
            assert mean == (pytest.approx(want_mean, rel=1e-9, abs=1e-12) if want_mean is not None else None)
    full = selectors.sentiment_shift(selectors.ReportParams(start=dt.date(2026, 10, 5), end=dt.date(2026, 11, 8)))
    assert full["conversations"] > 300 and full["turned_around"] and full["worsened"] and full["stayed_negative"]
    assert any(a["shift"] == b["shift"] for a, b in zip(full["most_worsened"], full["most_worsened"][1:]))
    params = selectors.ReportParams(start=dt.date(2026, 10, 5), end=dt.date(2026, 11, 8), tz=ZoneInfo("Europe/Berlin"))
    at_risk = selectors.customers_at_risk(params)
    assert len(at_risk) == 50 and at_risk == customers_at_risk_from_models(params)


def customers_at_risk_from_models(params, limit=50):
    """The reading before: CustomerFact instances."""
    from apps.reports.models import CustomerFact

    lo, hi = params.utc_range
    out = []
    for fact in CustomerFact.objects.filter(last_contact_at__gte=lo, last_contact_at__lt=hi).order_by(
            "-last_contact_at")[:2000]:
        values = [v for _, v in fact.recent]
        reasons = []
        if fact.churn_words:
            reasons.append("churn words: " + ", ".join(fact.churn_words))
        if len(values) >= 2 and all(v <= metrics.NEGATIVE for v in values[-2:]):
            reasons.append("last two messages negative")
        if len(values) >= 2 and values[-1] - values[0] <= -0.5:
            reasons.append(f"sentiment fell {values[0]:+.2f} → {values[-1]:+.2f}")
        if reasons:
            out.append({"customer_id": fact.customer_id, "channel": fact.channel, "reasons": reasons,
                        "last_sentiment": values[-1] if values else None,
                        "last_contact_at": fact.last_contact_at.astimezone(params.tz).isoformat(),
                        "link": slice_reader.conversation_link(fact.last_conversation_id, params), "customer": ""})
    out.sort(key=lambda r: (-len(r["reasons"]), r["last_sentiment"] if r["last_sentiment"] is not None else 0))
    return out[:limit]


def test_mean_compound_is_the_same_whatever_order_the_scores_are_added_in():
    """A float sum moves with the order of its terms (PostgreSQL adds rollup rows up in the order it
    reads them, which a rebuild changes; a spam mark adds a score and takes it out again): the
    mean is read from the sum rounded to the scores' 4 decimals, the exact sum."""
    rng = random.Random(22)
    scores = [round(rng.uniform(-1, 1), 4) for _ in range(300)]
    raw, means = set(), set()
    for _ in range(40):
        rng.shuffle(scores)
        total = 0.0
        for s in scores:
            total += s
        total = total + 0.4567 - 0.4567  # a spam mark and its unmark
        raw.add(total)
        means.add(metrics.mean_compound(total, len(scores)))
    assert len(raw) > 1  # the difference the audit saw (-0.07074285714285714 / ...15)
    assert means == {float(sum(Decimal(str(s)) for s in scores)) / len(scores)}
    assert metrics.mean_compound(0.0, 0) is None
