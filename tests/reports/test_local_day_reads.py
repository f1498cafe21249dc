"""Reads shaped for local days (issue 19, "speed measured from the edge"): the marketing
report's per-day series by channel and by account from the channel-and-account hour slices
(unfiltered and under a channel, account, queue or team filter; an agent's from its full rows
through the agent index), and the experience report's
sentiment shift through the fact indexes. Each is compared with the figures computed here in
plain Python from the test's own events, in zones other than UTC (a whole-hour zone across
a DST change, Los Angeles, and Kolkata's half hour: each event in its exact local day) and
under filters."""
import datetime as dt
import random
from collections import defaultdict
from zoneinfo import ZoneInfo

import pytest

from apps.reports import metrics, rollups, selectors, slice_reader
from apps.reports.models import ConversationFact, MetricEvent, MetricSlice

ZONES = ["Europe/Berlin", "America/Los_Angeles", "Asia/Kolkata"]
START = dt.datetime(2026, 10, 5, tzinfo=dt.timezone.utc)
# account -> channel; queue -> team
ACCOUNTS = {11: "twitter", 12: "twitter", 13: "demo"}
QUEUES = {21: 31, 22: 31, 23: 32}
RANGES = [(dt.date(2026, 10, 7), dt.date(2026, 10, 9)),    # days only
          (dt.date(2026, 10, 20), dt.date(2026, 11, 3)),   # whole weeks, the DST change in Europe and days around
          (dt.date(2026, 10, 1), dt.date(2026, 11, 12))]   # beyond the data at both ends


def _inbound(n: int, seed: int) -> list[dict]:
    """`n` customer messages over five weeks at any minute, scored or not, on the sentiment
    thresholds and either side of them, in three accounts of two channels and three queues
    of two teams; rolled up by the applier. Returns them as plain dicts."""
    rng = random.Random(seed)
    scores = [None, -0.05, 0.05, -0.0499, 0.0499, 0.0, -0.9, 0.9]
    out, events = [], []
    for i in range(n):
        at = START + dt.timedelta(minutes=rng.randrange(35 * 24 * 60))
        account, queue = rng.choice(list(ACCOUNTS)), rng.choice(list(QUEUES))
        value = rng.choice(scores + [round(rng.uniform(-1, 1), 4)])  # 4 decimals, as the scorer stores
        out.append({"at": at, "channel": ACCOUNTS[account], "account_id": account, "queue_id": queue,
                    "team_id": QUEUES[queue], "agent_id": 1 + i % 4, "value": value})
        events.append(MetricEvent(key=f"in:{i}", kind="msg_in", occurred_at=at, conversation_id=i + 1, cycle=1,
                                  channel=ACCOUNTS[account], account_id=account, queue_id=queue,
                                  team_id=QUEUES[queue], agent_id=out[-1]["agent_id"], customer_id=i + 1,
                                  value=value))
    MetricEvent.objects.bulk_create(events)
    rollups.rollups_apply()
    return out


def _local_day(at: dt.datetime, zone: ZoneInfo) -> dt.date:
    """The local day an event is in (exact in Kolkata's half hour too)."""
    return at.astimezone(zone).date()


def _row(messages: list[dict]) -> dict:
    scored = [m["value"] for m in messages if m["value"] is not None]
    positive = sum(v >= 0.05 for v in scored)
    negative = sum(v <= -0.05 for v in scored)
    return {"messages": len(messages), "scored": len(scored), "positive": positive, "negative": negative,
            "neutral": len(scored) - positive - negative,
            "net_sentiment": 100.0 * (positive - negative) / len(scored) if scored else None,
            "mean_compound": sum(scored) / len(scored) if scored else None}


def _expected_by_day(messages: list[dict], params) -> tuple[dict, dict]:
    """{(channel, day): row} and {(account id, day): row} over the report's days, for every
    channel and account with a message in the range."""
    days = params.days
    inside = [m for m in messages if days[0] <= _local_day(m["at"], params.tz) <= days[-1]]
    by = {"channel": defaultdict(list), "account_id": defaultdict(list)}
    for m in inside:
        for dim in by:
            by[dim][(m[dim], _local_day(m["at"], params.tz))].append(m)
    channels = sorted({m["channel"] for m in inside})
    accounts = sorted({m["account_id"] for m in inside})
    return ({(c, d): _row(by["channel"][(c, d)]) for c in channels for d in days},
            {(a, d): _row(by["account_id"][(a, d)]) for a in accounts for d in days})


def _close(got: dict, want: dict, where) -> None:
    assert got.keys() == want.keys(), where
    for k, v in want.items():
        if isinstance(v, float):
            assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-12), (where, k)
        else:
            assert got[k] == v, (where, k)


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ZONES)
def test_marketing_days_by_channel_and_account_equal_the_events(zone):
    messages = _inbound(700, seed=41)
    assert MetricSlice.objects.filter(grain="h", dim=metrics.CHANNEL_ACCOUNT, fdim="team").exists()
    filters = [({}, lambda m: True), ({"team_id": 31}, lambda m: m["team_id"] == 31),
               ({"queue_id": 23}, lambda m: m["queue_id"] == 23),
               ({"channel": "twitter"}, lambda m: m["channel"] == "twitter"),
               ({"account_id": 13}, lambda m: m["account_id"] == 13),
               # agents have no hour slices: the agent's full rows (rollup_agent_metric_bucket)
               ({"agent_id": 3}, lambda m: m["agent_id"] == 3)]
    for start, end in RANGES:
        for flt, keep in filters:
            params = selectors.ReportParams(start=start, end=end, tz=ZoneInfo(zone), show_people=False, **flt)
            report = selectors.marketing_report(params=params)
            channels, accounts = _expected_by_day([m for m in messages if keep(m)], params)
            where = (zone, start, flt)
            assert [(r["channel"], r["day"]) for r in report["by_channel_day"]] == [
                (c, d.isoformat()) for c, d in channels], where
            for r in report["by_channel_day"]:
                _close({k: v for k, v in r.items() if k not in ("channel", "day")},
                       channels[(r["channel"], dt.date.fromisoformat(r["day"]))], where)
            labels = slice_reader.dimension_labels("account", [a for a, _ in accounts], False)
            assert [(r["account"], r["day"]) for r in report["by_account_day"]] == [
                (labels[a], d.isoformat()) for a, d in accounts], where
            for r, key in zip(report["by_account_day"], accounts):
                _close({k: v for k, v in r.items() if k not in ("account", "day")}, accounts[key], where)
            # and the day totals the same events give
            for r in report["by_day"]:
                day = dt.date.fromisoformat(r["day"])
                _close({k: v for k, v in r.items() if k != "day"},
                       _row([m for m in messages if keep(m) and _local_day(m["at"], params.tz) == day]), where)


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ZONES)
def test_sentiment_shift_in_a_zone_under_a_filter_equals_the_facts_counted_here(zone):
    """Counts and both lists through the shift indexes (fact_scored_resolved, fact_shift)."""
    rng = random.Random(43)
    scores = [-0.05, 0.05, -0.0499, -0.0501, 0.0, -1.0, 1.0, 0.5, -0.5, None]
    facts = []
    for i in range(800):
        facts.append({"conversation_id": i + 1, "channel": rng.choice(["twitter", "demo"]), "queue_id": 21 + i % 3,
                      "team_id": QUEUES[21 + i % 3], "account_id": 11 + i % 3, "agent_id": 1 + i % 4,
                      "last_resolved_at": START + dt.timedelta(minutes=rng.randrange(35 * 24 * 60)),
                      "first_sentiment": rng.choice(scores + [rng.uniform(-1, 1)]),
                      "last_sentiment": rng.choice(scores + [rng.uniform(-1, 1)]), "inbound": rng.randint(1, 9)})
    ConversationFact.objects.bulk_create([ConversationFact(customer_id=f["conversation_id"], **f) for f in facts])
    for start, end in RANGES:
        for column, value in (("team_id", 31), ("queue_id", 22), ("channel", "demo"), ("agent_id", 2)):
            params = selectors.ReportParams(start=start, end=end, tz=ZoneInfo(zone), **{column: value})
            lo = dt.datetime.combine(start, dt.time(), ZoneInfo(zone))
            hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), ZoneInfo(zone))
            chosen = [f for f in facts if f[column] == value and lo <= f["last_resolved_at"] < hi
                      and f["first_sentiment"] is not None and f["last_sentiment"] is not None]
            rows = sorted(({"conversation_id": f["conversation_id"], "link": f"/inbox/c/{f['conversation_id']}/",
                            "channel": f["channel"], "first": f["first_sentiment"], "last": f["last_sentiment"],
                            "shift": f["last_sentiment"] - f["first_sentiment"], "messages": f["inbound"]}
                           for f in chosen), key=lambda r: (r["shift"], r["conversation_id"]))
            negative = [(f["first_sentiment"] <= -0.05, f["last_sentiment"] <= -0.05) for f in chosen]
            got = selectors.sentiment_shift(params)
            mean = got.pop("mean_shift")
            assert got == {"conversations": len(chosen), "turned_around": negative.count((True, False)),
                           "worsened": negative.count((False, True)), "stayed_negative": negative.count((True, True)),
                           "most_improved": list(reversed(rows[-15:])), "most_worsened": rows[:15]}, (start, column)
            shifts = [r["shift"] for r in rows]
            assert mean == (pytest.approx(sum(shifts) / len(shifts), rel=1e-9, abs=1e-12) if shifts else None)
