"""Unfiltered UTC reports read the one-dimension day slices (MetricSlice): the
same figures as the full rollup rows, exact for small groups and within the
histogram's 2.5% for large ones."""
import contextlib
import datetime as dt
import random
import statistics
from zoneinfo import ZoneInfo

import pytest

from apps.reports import experience_report, marketing_report, metrics, rollups, selectors, service_report, slice_reader
from apps.reports.models import Grain, MetricEvent

from .test_correctness import world  # noqa: F401 - the fixture history

# the reports that read the slices, each holding its own name for the slice plan
SLICED_REPORTS = (service_report, experience_report, marketing_report)


@contextlib.contextmanager
def full_rows():
    """The reference: the same report read from the full rollup rows (exact values),
    themes from hour rows only."""
    plans = [(module, module.slice_plan) for module in SLICED_REPORTS]
    term_range = marketing_report._term_range
    for module, _ in plans:
        module.slice_plan = lambda params: None
    # hour rows (and the quarter-hour rows up to a midnight that is not a whole UTC hour)
    marketing_report._term_range = lambda params: slice_reader.local_buckets_q(*params.utc_range)
    try:
        yield
    finally:
        for module, plan in plans:
            module.slice_plan = plan
        marketing_report._term_range = term_range


def _strip(report):
    return {k: v for k, v in report.items() if k not in ("params",)}


def test_sliced_report_equals_full_rows_on_the_fixture_history(world):  # noqa: F811
    sliced = selectors.service_report(params=selectors.ReportParams(start=dt.date(2026, 11, 2),
                                                                    end=dt.date(2026, 11, 5)))
    with full_rows():
        full = selectors.service_report(params=selectors.ReportParams(start=dt.date(2026, 11, 2),
                                                                      end=dt.date(2026, 11, 5)))
    assert _strip(sliced) == _strip(full)


@pytest.mark.django_db
def test_large_groups_use_histograms_within_two_and_a_half_percent():
    rng = random.Random(7)
    day = dt.datetime(2026, 11, 3, 12, tzinfo=dt.timezone.utc)
    values = {1: [], 2: []}
    events = []
    for i in range(1500):
        agent = 1 + i % 2
        seconds = rng.lognormvariate(7, 1.2)  # minutes to hours, a long tail
        values[agent].append(seconds)
        events.append(MetricEvent(key=f"frt:{i}", kind="first_response", occurred_at=day + dt.timedelta(hours=i % 30),
                                  conversation_id=i + 1, cycle=1, channel="twitter", account_id=1, queue_id=1,
                                  team_id=1, agent_id=agent, customer_id=i + 1, value=seconds, value_bh=seconds))
    MetricEvent.objects.bulk_create(events)
    rollups.rollups_apply()
    params = dict(start=dt.date(2026, 11, 1), end=dt.date(2026, 11, 5))
    sliced = selectors.service_report(params=selectors.ReportParams(**params))
    with full_rows():
        full = selectors.service_report(params=selectors.ReportParams(**params))
    everything = values[1] + values[2]
    assert full["totals"]["first_response"]["median"] == pytest.approx(statistics.median(everything))
    for got, want in ((sliced["totals"]["first_response"], everything),
                      *((r["first_response"], values[r["agent_id"]]) for r in sliced["by_agent"])):
        assert got["count"] == len(want)
        assert got["mean"] == pytest.approx(statistics.mean(want))  # sums are exact
        assert got["median"] == pytest.approx(statistics.median(want), rel=0.025)
        assert got["p90"] == pytest.approx(statistics.quantiles(want, n=10, method="inclusive")[8], rel=0.025)
    assert sliced["totals"]["first_response"]["median"] != full["totals"]["first_response"]["median"]


def test_sliced_marketing_report_equals_full_rows(world):  # noqa: F811
    args = dict(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 5), show_people=False)
    sliced = selectors.marketing_report(params=selectors.ReportParams(**args))
    with full_rows():
        full = selectors.marketing_report(params=selectors.ReportParams(**args))
    # themes: day rows in UTC, hour rows otherwise
    for part in ("totals", "by_day", "by_channel_day", "by_account", "by_account_day", "topics", "hashtags",
                 "keywords", "topics_by_day", "hashtags_by_day"):
        assert sliced[part] == full[part], part
    assert sliced["by_channel_day"]


def test_sliced_experience_report_equals_full_rows(world):  # noqa: F811
    args = dict(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 5))
    sliced = selectors.experience_report(params=selectors.ReportParams(**args))
    with full_rows():
        full = selectors.experience_report(params=selectors.ReportParams(**args))
    for part in ("totals", "by_channel", "sentiment_by_day", "sentiment_shift", "customers_at_risk"):
        assert sliced[part] == full[part], part


@pytest.mark.django_db
def test_many_survey_answers_give_exact_scores_from_histograms():
    rng = random.Random(3)
    day = dt.datetime(2026, 11, 3, 9, tzinfo=dt.timezone.utc)
    answers = {"csat": [rng.randint(1, 5) for _ in range(400)], "nps": [rng.randint(0, 10) for _ in range(400)]}
    MetricEvent.objects.bulk_create([
        MetricEvent(key=f"{kind}:{i}", kind=kind, occurred_at=day + dt.timedelta(minutes=i), conversation_id=i + 1,
                    channel="twitter", account_id=1, queue_id=1, team_id=1, agent_id=1, customer_id=i + 1,
                    value=score)
        for kind, scores in answers.items() for i, score in enumerate(scores)])
    rollups.rollups_apply()
    args = dict(start=dt.date(2026, 11, 1), end=dt.date(2026, 11, 5))
    sliced = selectors.experience_report(params=selectors.ReportParams(**args))["totals"]
    with full_rows():
        full = selectors.experience_report(params=selectors.ReportParams(**args))["totals"]
    assert sliced["csat_answers"] == 400
    assert sliced["csat"] == full["csat"] == pytest.approx(100 * sum(s >= 4 for s in answers["csat"]) / 400)
    assert sliced["nps"] == full["nps"]


@pytest.mark.parametrize("vendor", ["postgresql", "other"])
def test_migration_fills_slices_and_day_terms_like_the_applier(world, vendor):  # noqa: F811
    """Existing installations: 0007 builds the new rows from the rollups already there."""
    from importlib import import_module

    from django.apps import apps
    from django.db import connection

    from apps.reports.models import MetricRollup, MetricSlice, TermRollup

    from .test_correctness import snapshot

    if vendor == "postgresql" and connection.vendor != "postgresql":
        pytest.skip("PostgreSQL path")
    incremental = snapshot()
    MetricSlice.objects.all().delete()
    TermRollup.objects.filter(grain="d").delete()

    class Editor:
        def __init__(self):
            self.connection = connection if vendor == "postgresql" else type("C", (), {"vendor": vendor})()

        def execute(self, sql):
            with connection.cursor() as cursor:
                cursor.execute(sql)

    import_module("apps.reports.migrations.0007_fill_slices_and_term_days").fill(apps, Editor())
    import_module("apps.reports.migrations.0009_metric_slice_weeks").fill(apps, Editor())  # weeks from the days
    import_module("apps.reports.migrations.0010_metric_slice_filters").fill(apps, Editor())  # filter slices
    import_module("apps.reports.migrations.0011_metric_slice_hours").fill(apps, Editor())  # hour slices
    import_module("apps.reports.migrations.0013_channel_account_hour_slices").fill(apps, Editor())
    # the quarter rows come from the events (0016), not the rollups
    MetricRollup.objects.filter(grain="q").delete()
    TermRollup.objects.filter(grain="q").delete()
    import_module("apps.reports.migrations.0017_quarter_hour_rollups").fill(apps, Editor())
    assert MetricSlice.objects.filter(grain="w").exists()
    assert MetricSlice.objects.filter(grain="w", fdim="team").exclude(dim="").exists()
    assert snapshot() == incremental


ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Pacific/Auckland", "Asia/Kolkata"]


def _same(a, b, path="report"):
    """Equal, but for float sums added in another order."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-9), path
    else:
        assert a == b, path


@pytest.mark.parametrize("zone", ["UTC", *ZONES])
@pytest.mark.parametrize("report", ["service", "experience", "marketing"])
@pytest.mark.parametrize("start,end", [(dt.date(2026, 10, 30), dt.date(2026, 11, 5)),
                                       (dt.date(2026, 10, 28), dt.date(2026, 11, 12))])
def test_reports_in_other_zones_read_slices_and_equal_the_hour_rows(world, zone, report, start, end):  # noqa: F811
    """A local day is its nearest UTC day plus/minus the hours between the two
    midnights; the range 2026-10-30..11-05 crosses New York's DST change (Nov 1).
    10-28..11-12 holds the whole week of the history (2-8 November): read from its
    week slices, the days around it from day slices."""
    params = selectors.ReportParams(start=start, end=end, tz=ZoneInfo(zone), show_people=report != "marketing")
    assert slice_reader.slice_plan(params) is not None
    sliced = selectors.report_build(name=report, params=params)
    with full_rows():
        full = selectors.report_build(name=report, params=params)
    _same(_strip(sliced), _strip(full))
    assert sum(r.get("volume_in", r.get("messages", 0)) for r in sliced.get("by_day", sliced.get(
        "sentiment_by_day", []))) > 0


def test_a_berlin_day_reads_two_hours_of_full_rows_not_twenty_four():
    plan = slice_reader.slice_plan(selectors.ReportParams(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 3),
                                                        tz=ZoneInfo("Europe/Berlin")))
    utc = dt.timezone.utc
    assert (plan.lo, plan.hi) == (dt.datetime(2026, 11, 2, tzinfo=utc), dt.datetime(2026, 11, 4, tzinfo=utc))
    hour, quarter = Grain.HOUR, Grain.QUARTER
    assert plan.range_start == [(1, (hour, dt.datetime(2026, 11, 1, 23, tzinfo=utc)))]  # Monday starts at 23:00 UTC
    assert plan.range_end == [(-1, (hour, dt.datetime(2026, 11, 3, 23, tzinfo=utc)))]   # Tuesday ends an hour early
    assert len(plan.day_edges) == 4
    # a zone whose offset is not whole hours reads the slices too, its local midnight exactly:
    # Monday starts at 18:30 UTC (the quarters 18:30 and 18:45, then the hours 19-23)
    plan = slice_reader.slice_plan(selectors.ReportParams(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 3),
                                                        tz=ZoneInfo("Asia/Kolkata")))
    assert plan.lo == dt.datetime(2026, 11, 2, tzinfo=utc)
    assert plan.range_start == ([(1, (hour, dt.datetime(2026, 11, 1, h, tzinfo=utc))) for h in range(19, 24)]
                                + [(1, (quarter, dt.datetime(2026, 11, 1, 18, m, tzinfo=utc))) for m in (30, 45)])


@pytest.mark.django_db
def test_large_groups_in_another_zone_stay_within_the_histograms_error():
    """Big groups: the edge hours' values are added to or taken from the merged histogram."""
    rng = random.Random(11)
    start = dt.datetime(2026, 11, 1, 20, tzinfo=dt.timezone.utc)
    events, values = [], []
    for i in range(1200):
        seconds = rng.lognormvariate(7, 1.2)
        at = start + dt.timedelta(minutes=7 * i)  # ~5.8 days, every hour of the day
        values.append((at, seconds))
        events.append(MetricEvent(key=f"frt:{i}", kind="first_response", occurred_at=at, conversation_id=i + 1,
                                  cycle=1, channel="twitter", account_id=1, queue_id=1, team_id=1, agent_id=1,
                                  customer_id=i + 1, value=seconds, value_bh=seconds))
    MetricEvent.objects.bulk_create(events)
    rollups.rollups_apply()
    berlin = ZoneInfo("Europe/Berlin")
    params = selectors.ReportParams(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 6), tz=berlin)
    lo, hi = params.utc_range
    want = [v for at, v in values if lo <= at < hi]
    got = selectors.service_report(params=params)
    assert got["totals"]["first_response"]["count"] == len(want) > 200
    assert got["totals"]["first_response"]["mean"] == pytest.approx(statistics.mean(want))
    assert got["totals"]["first_response"]["median"] == pytest.approx(statistics.median(want), rel=0.025)
    for row in got["by_day"]:
        day = [v for at, v in values if at.astimezone(berlin).date().isoformat() == row["day"]]
        assert row["first_response"]["count"] == len(day)
        assert row["first_response"]["median"] == pytest.approx(statistics.median(day), rel=0.025)


WEEK_RANGES = [(dt.date(2026, 10, 5), dt.date(2026, 11, 8)),    # five whole weeks
               (dt.date(2026, 10, 7), dt.date(2026, 11, 3)),    # Wednesday to Tuesday: edge days both ends
               (dt.date(2026, 10, 12), dt.date(2026, 10, 18)),  # one week
               (dt.date(2026, 10, 13), dt.date(2026, 10, 19)),  # seven days, no whole week
               (dt.date(2026, 9, 28), dt.date(2026, 11, 15))]   # beyond the data at both ends


def _history_over_weeks(n: int, seed: int) -> None:
    """`n` conversations' events over five weeks (5 October - 8 November 2026, every
    hour of the day): durations, sentiment, surveys, in three agents, two queues and
    two channels."""
    rng = random.Random(seed)
    start = dt.datetime(2026, 10, 5, tzinfo=dt.timezone.utc)
    events = []
    for i in range(n):
        at = start + dt.timedelta(minutes=rng.randrange(35 * 24 * 60))
        dims = dict(channel=rng.choice(["twitter", "demo"]), account_id=1, queue_id=rng.choice([1, 2]), team_id=1,
                    agent_id=rng.choice([1, 2, 3]), customer_id=i + 1, conversation_id=i + 1, cycle=1)
        seconds = rng.lognormvariate(7, 1.2)
        events += [
            MetricEvent(key=f"open:{i}", kind="opened", occurred_at=at, **dims),
            MetricEvent(key=f"in:{i}", kind="msg_in", occurred_at=at, value=round(rng.uniform(-1, 1), 4), **dims),
            MetricEvent(key=f"frt:{i}", kind="first_response", occurred_at=at + dt.timedelta(seconds=seconds),
                        value=seconds, value_bh=seconds / 2, **dims),
            MetricEvent(key=f"res:{i}", kind="resolved", occurred_at=at + dt.timedelta(seconds=3 * seconds),
                        value=3 * seconds, **dims)]
        if i % 3 == 0:
            events.append(MetricEvent(key=f"csat:{i}", kind="csat", occurred_at=at + dt.timedelta(hours=5),
                                      value=rng.randint(1, 5), **dims))
    MetricEvent.objects.bulk_create(events)
    rollups.rollups_apply()


@contextlib.contextmanager
def day_slices_only():
    """The slice path before week slices: every day of the range from the day rows."""
    spans = (slice_reader.plan_spans, service_report.plan_spans)
    slice_reader.plan_spans = service_report.plan_spans = lambda lo, hi: [("d", lo, hi)]
    try:
        yield
    finally:
        slice_reader.plan_spans, service_report.plan_spans = spans


def test_week_spans_are_the_whole_weeks_inside_and_the_days_at_the_ends():
    utc = dt.timezone.utc

    def day(d):
        return dt.datetime(2026, 10, d, tzinfo=utc)

    assert slice_reader.plan_spans(day(7), day(31)) == [("w", day(12), day(26)), ("d", day(7), day(12)),
                                                 ("d", day(26), day(31))]
    assert slice_reader.plan_spans(day(13), day(20)) == [("d", day(13), day(20))]  # no whole week inside
    assert slice_reader.plan_spans(day(12), day(19)) == [("w", day(12), day(19)), ("d", day(12), day(12)),
                                                  ("d", day(19), day(19))]
    assert slice_reader.plan_spans(None, day(14)) == [("w", None, day(12)), ("d", day(12), day(14))]  # backlog


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Pacific/Auckland"])
def test_week_slices_equal_the_full_rows_over_weeks(zone):
    """Small groups (at most 200 values): exact, from week and day slices alike."""
    _history_over_weeks(120, seed=5)
    from apps.reports.models import MetricSlice

    assert MetricSlice.objects.filter(grain="w").count() > 0
    for start, end in WEEK_RANGES:
        for report in ("service", "experience", "marketing"):
            params = selectors.ReportParams(start=start, end=end, tz=ZoneInfo(zone),
                                            show_people=report != "marketing")
            sliced = selectors.report_build(name=report, params=params)
            with full_rows():
                full = selectors.report_build(name=report, params=params)
            _same(_strip(sliced), _strip(full), f"{report} {start}..{end}")
            assert sliced.get("totals", {}).get("volume_in", 1) > 0


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "Pacific/Auckland"])
def test_week_slices_give_the_day_slices_histograms_over_weeks(zone):
    """Large groups: the week rows' merged histograms are the day rows' (the same bins
    added up), and their counts and sums the same."""
    _history_over_weeks(1200, seed=9)
    for start, end in WEEK_RANGES:
        params = selectors.ReportParams(start=start, end=end, tz=ZoneInfo(zone))
        weeks = selectors.service_report(params=params)
        with day_slices_only():
            days = selectors.service_report(params=params)
        _same(_strip(weeks), _strip(days), f"service {start}..{end}")
    assert weeks["totals"]["first_response"]["count"] > metrics.EXACT_MAX  # histograms answered
