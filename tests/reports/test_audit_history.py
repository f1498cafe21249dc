"""Issue 22's audit as the project's own test: a history with every case of the issue is
driven through the real services (audit_driver.py) and every report, every grouping, is read
through the HTTP API (/api/v1/reports/<name>/) in UTC, America/Los_Angeles (negative offset,
DST change inside the history), Europe/Berlin (DST change inside the history) and Asia/Kolkata
(a half-hour zone), before and after `reports_rebuild`, and compared with figures computed in
plain Python from the script's own events (audit_history.py).

Where today's product is wrong on a case the issue lists, the correct figure is asserted in its
own strict-xfail test below, and the other tests read today's figure for that case through
`audit_history.facts(known_bugs=...)`. When a fix lands, its xfail fails (XPASS, strict): remove
the xfail and the bug's name from KNOWN_BUGS (docs/reports.md, "How correctness is tested")."""

import pytest
from django.core.management import call_command
from django.db import transaction
from rest_framework.test import APIClient

from . import audit_history as H
from .audit_driver import history_played

pytestmark = pytest.mark.django_db  # the test database is set up for the module's own transaction

KNOWN_BUGS = frozenset()
PHASES = ("incremental", "rebuilt")
REPORTS = ("service", "experience", "marketing", "gap")
HALF_HOUR = {"Asia/Kolkata"}
CHANNEL = {"x": "twitter", "email": "email", "mastodon": "mastodon"}


def _read_all(client, world) -> dict:
    out = {}
    lo, hi = H.RANGE
    for zone in H.ZONES:
        for name in REPORTS:
            response = client.get(f"/api/v1/reports/{name}/", {"start": lo, "end": hi, "tz": zone})
            assert response.status_code == 200, response.content[:500]
            out[(name, zone)] = response.json()
    for team_name, team in world.teams.items():  # one filter: a team's report in its own zone
        response = client.get("/api/v1/reports/service/", {"start": lo, "end": hi, "tz": team.time_zone,
                                                            "team": team.pk})
        assert response.status_code == 200, response.content[:500]
        out[("service", f"team:{team_name}")] = response.json()
    return out


@pytest.fixture(scope="module")
def audit(django_db_setup, django_db_blocker):
    """Built once for the module inside a transaction rolled back at its end."""
    with django_db_blocker.unblock(), transaction.atomic():
        with history_played() as (world, clock):
            client = APIClient()
            client.force_authenticate(world.admin)
            read = {"incremental": _read_all(client, world)}
            call_command("reports_rebuild", stdout=open("/dev/null", "w"))
            read["rebuilt"] = _read_all(client, world)
            world.read = read
            yield world
        transaction.set_rollback(True)


def _approx(expected: dict, actual: dict, where: str):
    for key, want in expected.items():
        got = actual.get(key)
        if isinstance(want, dict):
            _approx(want, got or {}, f"{where}.{key}")
        elif isinstance(want, float) or isinstance(got, float):
            assert got == pytest.approx(want), f"{where}.{key}: API {got!r}, expected {want!r}"
        else:
            assert got == want, f"{where}.{key}: API {got!r}, expected {want!r}"


def _started(row):
    return row["opened"] - row["dismissed"]


def _service_expected(fs):
    row = H.service_row(fs)
    row["started"] = row.pop("opened")
    return row


def _service_actual(row):
    return {**row, "started": _started(row)}


def _rows(report, by):
    return {r[by]: r for r in report[f"by_{by}"]}


def _check_service(report, fs, zone, *, whole_hours, agent_ids):
    _approx(_service_expected(fs), _service_actual(report["totals"]), f"{zone} totals")
    for channel, provider in CHANNEL.items():
        mine = [f for f in fs if f.channel == channel]
        actual = _rows(report, "channel").get(provider)
        if mine:
            _approx(_service_expected(mine), _service_actual(actual), f"{zone} by_channel {provider}")
        for by, key in (("team", H.TEAM_OF_CHANNEL[channel]), ("queue", H.TEAM_OF_CHANNEL[channel].replace(
                "Care ", "Queue "))):
            if mine:
                _approx(_service_expected(mine), _service_actual(_rows(report, by)[key]), f"{zone} by_{by} {key}")
    agents = {r["agent_id"]: r for r in report["by_agent"]}
    for name in {f.agent for f in fs if f.metric == "msg_out"}:
        want = sum(1 for f in fs if f.metric == "msg_out" and f.agent == name)
        assert agents[agent_ids[name]]["volume_out"] == want, f"{zone} by_agent {name} volume_out"
    days = H.by_day(fs, zone, _service_expected, whole_hours=whole_hours)
    for row in report["by_day"]:
        _approx(days[row["day"]], _service_actual(row), f"{zone} by_day {row['day']}")
    assert [d["backlog"] for d in report["backlog"]] == H.backlog(fs, zone, whole_hours=whole_hours), \
        f"{zone} backlog"


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("zone", [z for z in H.ZONES if z not in HALF_HOUR])
def test_service_report_every_grouping(audit, phase, zone):
    fs = H.facts(known_bugs=KNOWN_BUGS)
    _check_service(audit.read[phase][("service", zone)], fs, zone, whole_hours=False,
                   agent_ids={name: a.pk for name, a in audit.agents.items()})


@pytest.mark.parametrize("phase", PHASES)
def test_service_report_half_hour_zone_totals_and_groups(audit, phase):
    """Asia/Kolkata: totals and groups (its local days: test_half_hour_zone_local_days)."""
    zone = "Asia/Kolkata"
    report = audit.read[phase][("service", zone)]
    fs = H.facts(known_bugs=KNOWN_BUGS)
    _approx(_service_expected(fs), _service_actual(report["totals"]), f"{zone} totals")
    for channel, provider in CHANNEL.items():
        _approx(_service_expected([f for f in fs if f.channel == channel]),
                _service_actual(_rows(report, "channel")[provider]), f"{zone} by_channel {provider}")


@pytest.mark.parametrize("phase", PHASES)
def test_service_report_filtered_by_team_in_its_zone(audit, phase):
    fs = H.facts(known_bugs=KNOWN_BUGS)
    for team_name, team in audit.teams.items():
        if team.time_zone in HALF_HOUR:
            continue
        report = audit.read[phase][("service", f"team:{team_name}")]
        mine = [f for f in fs if H.TEAM_OF_CHANNEL[f.channel] == team_name]
        _approx(_service_expected(mine), _service_actual(report["totals"]), f"team {team_name} totals")
        days = H.by_day(mine, team.time_zone, _service_expected)
        for row in report["by_day"]:
            _approx(days[row["day"]], _service_actual(row), f"team {team_name} by_day {row['day']}")
        assert [d["backlog"] for d in report["backlog"]] == H.backlog(mine, team.time_zone)


def _experience_expected(fs):
    row = H.experience_row(fs)
    return row


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("zone", H.ZONES)
def test_experience_report(audit, phase, zone):
    report = audit.read[phase][("experience", zone)]
    fs = H.facts(known_bugs=KNOWN_BUGS)
    _approx(_experience_expected(fs), report["totals"], f"{zone} totals")
    for channel, provider in CHANNEL.items():
        _approx(_experience_expected([f for f in fs if f.channel == channel]), _rows(report, "channel")[provider],
                f"{zone} by_channel {provider}")
    if zone not in HALF_HOUR:
        days = H.by_day(fs, zone, H.sentiment_counts)
        for row in report["sentiment_by_day"]:
            _approx(days[row["day"]], row, f"{zone} sentiment_by_day {row['day']}")


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("zone", H.ZONES)
def test_marketing_report(audit, phase, zone):
    report = audit.read[phase][("marketing", zone)]
    fs = H.facts(known_bugs=KNOWN_BUGS)
    _approx(H.sentiment_counts(fs), report["totals"], f"{zone} totals")
    accounts = {r["account"]: r for r in report["by_account"]}
    assert len(accounts) == 3
    for channel, account in audit.accounts.items():
        _approx(H.sentiment_counts([f for f in fs if f.channel == channel]), accounts[account.name],
                f"{zone} by_account {account.name}")
    if zone not in HALF_HOUR:
        days = H.by_day(fs, zone, H.sentiment_counts)
        for row in report["by_day"]:
            _approx(days[row["day"]], row, f"{zone} by_day {row['day']}")
        for row in report["by_channel_day"]:
            mine = [f for f in fs if CHANNEL[f.channel] == row["channel"]]
            _approx(H.by_day(mine, zone, H.sentiment_counts)[row["day"]], row,
                    f"{zone} by_channel_day {row['channel']} {row['day']}")


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("zone", H.ZONES)
def test_gap_report(audit, phase, zone):
    report = audit.read[phase][("gap", zone)]
    expected = H.gap()
    cases = {cid: case for case, cid in audit.conversations.items()}
    assert report["totals"]["conversations"] == len(expected)
    assert sorted(cases[r["conversation_id"]] for r in report["met_but_bad"]) == sorted(
        c for c, g in expected.items() if g["met_but_bad"])
    assert sorted(cases[r["conversation_id"]] for r in report["missed_but_good"]) == sorted(
        c for c, g in expected.items() if g["missed_but_good"])
    by_channel = {r["name"]: r for r in report["by_channel"]}
    for channel, provider in CHANNEL.items():
        mine = [g for g in expected.values() if g["channel"] == channel]
        assert by_channel[provider]["conversations"] == len(mine), f"{zone} gap by_channel {provider}"
        assert by_channel[provider]["met_but_bad"] == sum(g["met_but_bad"] for g in mine)


def test_incremental_and_rebuilt_reports_are_identical(audit):
    """Besides matching the script: not one figure moves with reports_rebuild."""
    for key, before in audit.read["incremental"].items():
        assert audit.read["rebuilt"][key] == before, key


def test_sentiment_labels_agree_with_plain_vader():
    """The script's hand labels, checked with the vaderSentiment library on the text (not the
    product's stored value, not its care-tuned scorer): each text's sign is unambiguous."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    for e in H.SCRIPT:
        if e.kind != "in":
            continue
        compound = analyzer.polarity_scores(e.data["text"])["compound"]
        label = H.POS if compound >= 0.05 else H.NEG if compound <= -0.05 else H.NEU
        assert label == e.data["label"], (e.data["text"], compound)


def test_the_history_covers_every_case_of_the_issue(audit):
    kinds = {e.kind for e in H.SCRIPT}
    assert {"reply_failed", "retry", "agent_reopen", "spam", "unspam", "note", "assign", "answer"} <= kinds
    assert {e.data["kind"] for e in H.SCRIPT if e.kind == "answer"} == {"csat", "ces", "nps"}
    assert {e.data["channel"] for e in H.SCRIPT if e.kind == "in"} == set(CHANNEL)
    assert audit.mailbox.messages, "email replies went out through SMTP"
    assert any(p.get("visibility") == "direct" for p in audit.mastodon.posted), "the Mastodon survey went privately"


# --- today's product is wrong on these (issue 22); strict xfail: a fix turns them into failures --

@pytest.mark.parametrize("phase", PHASES)
def test_agent_reopen_is_not_a_repeat_contact(audit, phase):
    fs = H.facts()
    report = audit.read[phase][("experience", "UTC")]
    assert report["totals"]["repeat_contacts"] == sum(1 for f in fs if f.metric == "repeat_contact")
    assert report["totals"]["repeat_contact_rate"] == pytest.approx(
        sum(1 for f in fs if f.metric == "repeat_contact") / sum(1 for f in fs if f.metric == "resolved"))


@pytest.mark.parametrize("phase", PHASES)
def test_late_spam_leaves_every_metric(audit, phase):
    fs = H.facts()  # spam out of everything, whatever the order of events
    service = audit.read[phase][("service", "UTC")]["totals"]
    marketing = audit.read[phase][("marketing", "UTC")]["totals"]
    _approx({k: v for k, v in _service_expected(fs).items() if k in ("volume_in", "sla_breached", "started")},
            _service_actual(service), "service totals")
    _approx(H.sentiment_counts(fs), marketing, "marketing totals")


@pytest.mark.parametrize("phase", PHASES)
def test_half_hour_zone_local_days(audit, phase):
    zone = "Asia/Kolkata"
    fs = H.facts(known_bugs=KNOWN_BUGS)
    service = audit.read[phase][("service", zone)]
    days = H.by_day(fs, zone, _service_expected)
    for row in service["by_day"]:
        _approx(days[row["day"]], _service_actual(row), f"{zone} by_day {row['day']}")
    assert [d["backlog"] for d in service["backlog"]] == H.backlog(fs, zone)
    marketing = audit.read[phase][("marketing", zone)]
    sentiment_days = H.by_day(fs, zone, H.sentiment_counts)
    for row in marketing["by_day"]:
        _approx(sentiment_days[row["day"]], row, f"{zone} marketing by_day {row['day']}")


@pytest.mark.parametrize("phase", PHASES)
def test_agent_attribution(audit, phase):
    rows = audit.read[phase][("service", "UTC")]["by_agent"]
    for row in rows:
        if row["resolution_rate"] is not None:
            assert row["resolution_rate"] <= 1.0, (row["agent"], row["resolution_rate"])
    # every breach of the history happened while nobody or a known agent was assigned: none to "(none)"
    # for x2's second cycle (assigned to leo when the monitor breached it)
    by_id = {r["agent_id"]: r for r in rows}
    assert by_id.get(audit.agents["leo"].pk, {}).get("sla_breached", 0) >= 1

