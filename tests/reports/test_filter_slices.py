"""Filtered reports (?team=, ?channel=, ?queue=, ?agent=, ?account=) read the filter slices
(MetricSlice.fdim/fkey: weeks along every other dimension, days and weeks of the filter's
own total), the filter's full day rows for the days outside whole weeks and its hour rows
at the edges: the same figures as grouping the filter's full rollup rows, exact for small
groups and within the histogram's 2.5% for large ones (issue 19)."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from apps.accounts.models import User
from apps.reports import metrics, rollups, selectors, slice_reader
from apps.reports.models import MetricRollup, MetricSlice, TermRollup

from .test_correctness import world  # noqa: F401 - the fixture history
from .test_slices import WEEK_RANGES, _history_over_weeks, _same, _strip, full_rows

ZONES = ["UTC", "Europe/Berlin", "America/Los_Angeles", "Asia/Kolkata"]
FIXTURE_RANGES = [(dt.date(2026, 11, 2), dt.date(2026, 11, 5)),    # days only
                  (dt.date(2026, 10, 28), dt.date(2026, 11, 12))]  # the whole week 2-8 November and days around


def _world_filters(h) -> list[dict]:
    anna = User.objects.get(username="anna")
    return [{"team_id": h.queue.team_id}, {"queue_id": h.queue.pk}, {"channel": "twitter"}, {"channel": "demo"},
            {"account_id": h.accounts["twitter"].pk}, {"agent_id": anna.pk}]


def _build_both(report, params):
    sliced = selectors.report_build(name=report, params=params)
    with full_rows():
        full = selectors.report_build(name=report, params=params)
    return sliced, full


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("report", ["service", "experience", "marketing"])
def test_filtered_reports_read_filter_slices_and_equal_the_full_rows(world, zone, report):  # noqa: F811
    for filters in _world_filters(world):
        for start, end in FIXTURE_RANGES:
            params = selectors.ReportParams(start=start, end=end, tz=ZoneInfo(zone), show_people=report != "marketing",
                                            **filters)
            plan = slice_reader.slice_plan(params)
            assert plan is not None and plan.fdim and plan.fkey == str(next(iter(filters.values())))
            sliced, full = _build_both(report, params)
            _same(_strip(sliced), _strip(full), f"{report} {filters} {start}..{end}")


def test_two_filters_still_read_the_full_rows(world):  # noqa: F811
    params = selectors.ReportParams(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 5), team_id=world.queue.team_id,
                                    channel="twitter")
    assert slice_reader.slice_plan(params) is None


def test_a_filtered_report_breaks_down_by_its_own_dimension_as_its_total(world):  # noqa: F811
    params = selectors.ReportParams(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 5), team_id=world.queue.team_id)
    report = selectors.service_report(params=params)
    assert [r["team_id"] for r in report["by_team"]] == [world.queue.team_id]
    assert {k: v for k, v in report["by_team"][0].items() if k not in ("team", "team_id")} == report["totals"]


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ZONES)
def test_filter_slices_equal_the_full_rows_over_weeks(zone):
    """Small groups (at most 200 values): exact, weeks from the filter slices."""
    _history_over_weeks(120, seed=5)
    assert MetricSlice.objects.filter(grain="w", fdim="queue", dim="agent").exists()
    for start, end in WEEK_RANGES:
        for filters in ({"queue_id": 2}, {"agent_id": 3}, {"channel": "demo"}, {"team_id": 1}):
            for report in ("service", "experience", "marketing"):
                params = selectors.ReportParams(start=start, end=end, tz=ZoneInfo(zone),
                                                show_people=report != "marketing", **filters)
                sliced, full = _build_both(report, params)
                _same(_strip(sliced), _strip(full), f"{report} {filters} {start}..{end}")


def _close(got, want, path="report"):
    """Equal, but medians and p90 of large groups within the histogram's 2.5%."""
    if isinstance(got, dict):
        assert got.keys() == want.keys(), path
        approx = got.get("count", 0) > 200 and "median" in got
        for k in got:
            if approx and k in ("median", "p90") and want[k] is not None:
                assert got[k] == pytest.approx(want[k], rel=0.025), f"{path}.{k}"
            else:
                _close(got[k], want[k], f"{path}.{k}")
    elif isinstance(got, list):
        assert len(got) == len(want), path
        for i, (x, y) in enumerate(zip(got, want)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(got, float):
        assert got == pytest.approx(want, rel=1e-9), path
    else:
        assert got == want, path


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "Asia/Kolkata"])
def test_large_filtered_groups_stay_within_the_histograms_error(zone):
    """Large groups: counts and sums exact, medians and p90 from the week histograms plus
    the full rows' values of the other days, within 2.5% of the exact ones."""
    _history_over_weeks(1500, seed=9)
    for start, end in WEEK_RANGES[:2]:
        params = selectors.ReportParams(start=start, end=end, tz=ZoneInfo(zone), queue_id=1)
        sliced, full = _build_both("service", params)
        _close(_strip(sliced), _strip(full), f"service {start}..{end}")
        assert sliced["totals"]["first_response"]["count"] > 200


@pytest.mark.django_db
def test_the_applier_keeps_the_filter_and_hour_slices_the_migrations_build():
    """Incremental: what the applier wrote equals the migration's fill from the rollups."""
    from importlib import import_module

    from django.apps import apps
    from django.db import connection as db
    from django.db.models import Q

    _history_over_weeks(150, seed=3)

    def rows():
        return sorted((r.grain, r.bucket, r.metric, r.fdim, r.fkey, r.dim, r.key, r.count, round(r.total, 6),
                       tuple(r.values), tuple(sorted(r.hist.items())))
                      for r in MetricSlice.objects.filter(Q(grain__in=["h", "q"]) | ~Q(fdim="")))

    incremental = rows()
    assert incremental and any(r[0] == "h" for r in incremental) and any(r[0] == "q" for r in incremental)
    MetricSlice.objects.filter(Q(grain__in=["h", "q"]) | ~Q(fdim="")).delete()

    class Editor:
        connection = db

        def execute(self, sql):
            with db.cursor() as cursor:
                cursor.execute(sql)

    import_module("apps.reports.migrations.0010_metric_slice_filters").fill(apps, Editor())
    import_module("apps.reports.migrations.0011_metric_slice_hours").fill(apps, Editor())
    import_module("apps.reports.migrations.0013_channel_account_hour_slices").fill(apps, Editor())
    # the quarter rows come from the events (0016), not the rollups
    MetricRollup.objects.filter(grain="q").delete()
    TermRollup.objects.filter(grain="q").delete()
    import_module("apps.reports.migrations.0017_quarter_hour_rollups").fill(apps, Editor())
    assert any(r[5] == metrics.CHANNEL_ACCOUNT for r in incremental)
    assert rows() == incremental
    rollups.rollups_rebuild()
    assert rows() == incremental
