"""The report cache: scoped by role visibility, new rollups change the answer,
a rebuild never meets old entries, and the warm task fills what pages open."""
import datetime as dt
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache

from apps.accounts.models import Team
from apps.reports import cache as report_cache
from apps.reports import rollups, selectors, tasks
from apps.reports.models import RollupLock
from tests.factories import UserFactory

from .history import at, clock
from .test_correctness import world  # noqa: F401 - the fixture history

RANGE = {"start": "2026-11-02", "end": "2026-11-05", "tz": "UTC"}


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def _builds():
    """Counts report builds (cache misses)."""
    return mock.patch("apps.reports.cache.report_build", wraps=selectors.report_build)


def test_repeated_request_is_served_from_the_cache(api_client, world):  # noqa: F811
    api_client.force_authenticate(UserFactory(role="supervisor"))
    with _builds() as build:
        first = api_client.get("/api/v1/reports/service/", RANGE).json()
        second = api_client.get("/api/v1/reports/service/", RANGE).json()
        assert build.call_count == 1
        # every parameter is in the key: another zone, filter or range is another entry
        api_client.get("/api/v1/reports/service/", {**RANGE, "tz": "Europe/Berlin"})
        api_client.get("/api/v1/reports/service/", {**RANGE, "channel": "twitter"})
        api_client.get("/api/v1/reports/service/", {**RANGE, "end": "2026-11-04"})
        assert build.call_count == 4
    assert first == second


def test_a_supervisor_never_gets_another_scopes_cached_numbers(api_client, world):  # noqa: F811
    supervisor, marketing = UserFactory(role="supervisor"), UserFactory(role="marketing")
    api_client.force_authenticate(supervisor)
    named = api_client.get("/api/v1/reports/service/", RANGE).json()
    agents = [r["agent"] for r in named["by_agent"] if r["agent"] not in ("(none)", "(unassigned)")]
    assert len(agents) == 2 and not any(a.startswith("Agent ") for a in agents)
    # marketing asks the same URL: its own masked entry, not the supervisor's
    api_client.force_authenticate(marketing)
    masked = api_client.get("/api/v1/reports/service/", RANGE).json()
    assert all(r["agent"].startswith(("Agent ", "(nobody)")) for r in masked["by_agent"])
    # the key differs by scope even with every other parameter equal
    params = dict(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 5))
    version = report_cache.data_version()
    people = report_cache.cache_key("service", selectors.ReportParams(**params), version)
    masked_key = report_cache.cache_key("service", selectors.ReportParams(**params, show_people=False), version)
    assert people != masked_key
    # poison the marketing entry: a supervisor still gets the supervisor entry, and the reverse
    cache.set(masked_key, {"report": "service", "poison": "masked scope"})
    api_client.force_authenticate(supervisor)
    assert "poison" not in api_client.get("/api/v1/reports/service/", RANGE).json()
    cache.set(people, {"report": "service", "poison": "people scope"})
    api_client.force_authenticate(marketing)
    assert api_client.get("/api/v1/reports/service/", RANGE).json().get("poison") == "masked scope"  # its own


def test_new_rollups_change_the_answer(api_client, world):  # noqa: F811
    api_client.force_authenticate(UserFactory(role="supervisor"))
    before = api_client.get("/api/v1/reports/service/", RANGE).json()
    assert before["totals"]["volume_in"] == 8
    # a new message: until it is applied the report (cached) is what the rollups say
    world.customer_says("c4", at(5, 10, 0), "Where is my order?", who="fay")
    assert api_client.get("/api/v1/reports/service/", RANGE).json()["totals"]["volume_in"] == 8
    total = RollupLock.objects.get(pk=1).applied_total
    world.roll_up(at(5, 10, 5))
    assert RollupLock.objects.get(pk=1).applied_total > total
    after = api_client.get("/api/v1/reports/service/", RANGE).json()
    assert after["totals"]["volume_in"] == 9
    assert after["totals"]["volume_in"] == selectors.service_report(params=selectors.ReportParams(
        start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 5)))["totals"]["volume_in"]


def test_a_rebuild_never_meets_entries_cached_before(world):  # noqa: F811
    params = selectors.ReportParams(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 5))
    old = report_cache.data_version()
    report_cache.report_cached(name="service", params=params)
    with clock(at(5, 9, 30)):
        rollups.rollups_rebuild()
    assert report_cache.data_version() != old
    assert report_cache.cache_key("service", params, old) != report_cache.cache_key(
        "service", params, report_cache.data_version())


def test_warm_fills_the_default_reports_for_each_team_zone(client, world):  # noqa: F811
    team = Team.objects.get(name="Care EU")  # Europe/Berlin
    now = at(5, 9, 30)
    with clock(now):
        done = report_cache.reports_warm(now=now)
    assert done["built"] >= 6 and done["skipped"] == 0
    supervisor = UserFactory(role="supervisor", time_zone="Europe/Berlin")
    client.force_login(supervisor)
    with _builds() as build, clock(now):
        # what a Berlin lead opens: the default range, unfiltered and for their team, page and API
        assert client.get("/reports/service/").status_code == 200
        assert client.get("/reports/service/", {"team": team.pk}).status_code == 200
        assert client.get("/api/v1/reports/marketing/", {"team": team.pk}).status_code == 200
        assert client.get("/api/v1/reports/experience/", {"tz": "UTC"}).status_code == 200
        assert build.call_count == 0
        data = client.get("/api/v1/reports/service/", {"team": team.pk}).json()
    assert data["params"] == {"start": "2026-10-30", "end": "2026-11-05", "tz": "Europe/Berlin",
                              "team_id": team.pk}
    # the warm entry is the report as built now
    assert data == selectors.service_report(params=report_cache.default_params(
        ZoneInfo("Europe/Berlin"), team_id=team.pk, now=now))
    with clock(now):
        again = report_cache.reports_warm(now=now)
    assert again["built"] == 0 and again["present"] == done["built"]


def test_the_apply_task_asks_for_a_warm_after_applying(world, settings):  # noqa: F811
    world.customer_says("c5", at(5, 11, 0), "Hello again", who="gus")
    with mock.patch.object(tasks.reports_warm_task, "apply_async") as warm, clock(at(5, 11, 5)):
        tasks.rollups_apply_task()
        assert warm.call_count == 1
        tasks.rollups_apply_task()  # nothing new and within the throttle: no second warm
        assert warm.call_count == 1


@pytest.mark.django_db
def test_a_full_batch_of_customer_messages_queues_the_next_run_at_once(monkeypatch):
    """A busy inbox (more than a run's batch waiting) is counted run after run, not one batch
    a minute when beat comes back (5,000 a minute fell behind a 500/s stream every minute)."""
    from apps.reports import inbound

    queued = []
    monkeypatch.setattr(tasks.rollups_apply_task, "apply_async", lambda *a, **k: queued.append(k))
    monkeypatch.setattr(inbound, "inbound_messages_record", lambda **_: inbound.INBOUND_BATCH)
    tasks.rollups_apply_task()
    assert queued == [{}]
    monkeypatch.setattr(inbound, "inbound_messages_record", lambda **_: inbound.INBOUND_BATCH - 1)
    tasks.rollups_apply_task()
    assert queued == [{}]  # the rest fitted in this run: beat and changes ask for the next
