"""Local days are exact in every zone (issue 22, item 3): events at 00:10 and 23:50 local time
in zones whose offset is not whole hours (Kolkata +5:30, Kathmandu +5:45, Adelaide +9:30/+10:30,
St John's -3:30/-2:30) and in whole-hour zones across their DST changes (Los Angeles, Berlin)
land on their own local day in the day rows, the sentiment and theme series and the backlog,
read through /api/v1/reports/<name>/?tz=...: unfiltered (slices), under one filter (filter
slices), an agent (its full rows) and two filters (the full rows regrouped); the same after
`reports_rebuild`. The expected figures are computed here with zoneinfo from the events' own
times, never from the product's tables."""
import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from apps.reports import rollups
from apps.reports.models import Grain, MetricEvent, MetricRollup, MetricSlice, TermRollup
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

D = dt.date
# zone -> the local days its events are on: DST changes and the days either side
ZONE_DAYS = {
    "Asia/Kolkata": [D(2026, 10, 6), D(2026, 10, 7)],
    "Asia/Kathmandu": [D(2026, 10, 7), D(2026, 10, 8)],
    "Australia/Adelaide": [D(2026, 10, 3), D(2026, 10, 4), D(2026, 10, 5)],  # clocks forward on 4 October
    "Europe/Berlin": [D(2026, 10, 24), D(2026, 10, 25), D(2026, 10, 26)],    # back on 25 October
    "America/Los_Angeles": [D(2026, 10, 31), D(2026, 11, 1), D(2026, 11, 2)],  # back on 1 November
    "America/St_Johns": [D(2026, 10, 31), D(2026, 11, 1), D(2026, 11, 2)],     # back on 1 November
}
SPRING = {  # the spring-forward days (and Adelaide's fall back), a second history
    "Australia/Adelaide": [D(2026, 4, 4), D(2026, 4, 5), D(2026, 4, 6)],
    "Europe/Berlin": [D(2026, 3, 28), D(2026, 3, 29), D(2026, 3, 30)],
    "America/Los_Angeles": [D(2026, 3, 7), D(2026, 3, 8), D(2026, 3, 9)],
    "America/St_Johns": [D(2026, 3, 7), D(2026, 3, 8), D(2026, 3, 9)],
}
TEAMS = {31: 5, 32: 6}  # team -> its agent


def _history() -> list[dict]:
    """Per zone and local day: a conversation opened at 00:10 (its message then), resolved at
    23:50 the same day; another opened at 23:50, resolved at 00:10 the next day (open over the
    local midnight: in that day's backlog). Teams alternate. Applied by the applier."""
    events, out = [], []
    n = 0
    for days in (ZONE_DAYS, SPRING):
        for zone, dates in days.items():
            tz = ZoneInfo(zone)
            for day in dates:
                early = dt.datetime.combine(day, dt.time(0, 10), tzinfo=tz)
                late = dt.datetime.combine(day, dt.time(23, 50), tzinfo=tz)
                after = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 10), tzinfo=tz)
                for opened, resolved in ((early, late), (late, after)):
                    n += 1
                    team = 31 + n % 2
                    for kind, at in (("opened", opened), ("msg_in", opened), ("resolved", resolved)):
                        at = at.astimezone(dt.timezone.utc)
                        out.append({"kind": kind, "at": at, "team": team})
                        events.append(MetricEvent(
                            key=f"{kind}:{n}", kind=kind, occurred_at=at, conversation_id=n, cycle=1,
                            channel="twitter", account_id=11, queue_id=team - 10, team_id=team,
                            agent_id=TEAMS[team], customer_id=n,
                            value={"msg_in": 0.6, "resolved": (resolved - opened).total_seconds()}.get(kind),
                            data={"topics": ["billing"]} if kind == "msg_in" else {}))
    MetricEvent.objects.bulk_create(events)
    rollups.rollups_apply()
    return out


def _expected(history, zone: str, start: dt.date, end: dt.date, team=None) -> dict:
    """By local day in `zone`: opened, resolved, messages; the backlog at each local midnight."""
    tz = ZoneInfo(zone)
    count = Counter()
    before = Counter()  # the open cycles' net count up to each day's end
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    for e in history:
        if team and e["team"] != team:
            continue
        day = e["at"].astimezone(tz).date()
        count[(e["kind"], day)] += 1
        sign = {"opened": 1, "resolved": -1}.get(e["kind"], 0)
        for d in days:
            if day <= d:
                before[d] += sign
    return {"by_day": [{"day": d.isoformat(), "opened": count[("opened", d)], "resolved": count[("resolved", d)],
                        "messages": count[("msg_in", d)]} for d in days],
            "backlog": [{"day": d.isoformat(), "backlog": before[d]} for d in days],
            "opened": sum(count[("opened", d)] for d in days)}


def _ranges(zone):
    """The zone's own days (autumn, spring) and a long range over whole ISO weeks (week slices)
    holding every zone's autumn days."""
    return [(days[zone][0], days[zone][-1]) for days in (ZONE_DAYS, SPRING) if zone in days] + [
        (D(2026, 9, 28), D(2026, 11, 8))]


FILTERS = [({}, None), ({"team": 31}, 31), ({"agent": TEAMS[32]}, 32), ({"team": 31, "channel": "twitter"}, 31)]


def _check(api_client, history, zone):
    for start, end in _ranges(zone):
        for query, team in FILTERS:
            want = _expected(history, zone, start, end, team)
            params = {"start": start.isoformat(), "end": end.isoformat(), "tz": zone, **query}
            where = f"{zone} {start}..{end} {query}"
            service = api_client.get("/api/v1/reports/service/", params)
            assert service.status_code == 200, where
            service = service.json()
            got = [{"day": r["day"], "opened": r["opened"], "resolved": r["resolved"], "messages": r["volume_in"]}
                   for r in service["by_day"]]
            assert got == want["by_day"], where
            assert service["backlog"] == want["backlog"], where
            assert service["totals"]["opened"] == want["opened"], where
            experience = api_client.get("/api/v1/reports/experience/", params).json()
            assert [r["messages"] for r in experience["sentiment_by_day"]] == [
                r["messages"] for r in want["by_day"]], where
            marketing = api_client.get("/api/v1/reports/marketing/", params).json()
            assert [r["messages"] for r in marketing["by_day"]] == [r["messages"] for r in want["by_day"]], where
            if not query:  # themes have no team or agent: unfiltered only
                billing = [r["messages"] for r in marketing["topics_by_day"] if r["term"] == "billing"]
                assert billing == [r["messages"] for r in want["by_day"]], where


@pytest.mark.parametrize("zone", list(ZONE_DAYS))
def test_events_at_ten_past_and_ten_to_midnight_land_on_their_local_day(api_client, zone):
    history = _history()
    api_client.force_authenticate(UserFactory(role="supervisor"))
    _check(api_client, history, zone)
    call_command("reports_rebuild")
    assert MetricRollup.objects.filter(grain=Grain.QUARTER).exists()
    _check(api_client, history, zone)


def test_the_old_way_would_have_moved_kolkatas_first_half_hour():
    """The case of the issue, stated plainly: 00:10 in Kolkata is 18:40 UTC the day before,
    in the UTC hour that starts at 23:30 local: giving the hour to the day it starts in put
    the event on the wrong day."""
    tz = ZoneInfo("Asia/Kolkata")
    at = dt.datetime(2026, 10, 7, 0, 10, tzinfo=tz).astimezone(dt.timezone.utc)
    assert at.replace(minute=0).astimezone(tz).date() == D(2026, 10, 6)
    assert at.astimezone(tz).date() == D(2026, 10, 7)


def test_the_migration_backfill_builds_the_quarter_rows_the_applier_writes():
    """A database whose rollups predate quarter hours gets them from its applied events (migration 0016)."""
    _history()

    def rows():
        return (sorted(MetricRollup.objects.filter(grain="q").values_list(
                    "bucket", "metric", "team_id", "agent_id", "count", "total", "values")),
                sorted(MetricSlice.objects.filter(grain="q").values_list(
                    "bucket", "metric", "fdim", "fkey", "dim", "key", "count", "total", "values", "hist")),
                sorted(TermRollup.objects.filter(grain="q").values_list("bucket", "term", "count", "positive")))

    incremental = rows()
    assert all(incremental)
    for model in (MetricRollup, MetricSlice, TermRollup):
        model.objects.filter(grain="q").delete()
    assert rollups.quarter_rows_backfill() == MetricEvent.objects.count()
    assert rows() == incremental
    assert rollups.quarter_rows_backfill() == 0  # once
