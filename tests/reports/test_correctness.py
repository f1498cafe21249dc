"""The reports against an independent calculation on a fixture history with
reopens, bots, notes, SLA targets, surveys, time zones and business hours.

The traps: a resolve then close counted twice; a reply after a reopen timed
from a message of the previous cycle; a message at 23:30 UTC that is already
tomorrow in Berlin; auto-replies, survey links and notes taken as responses."""
import datetime as dt
import statistics
from zoneinfo import ZoneInfo

import pytest

from apps.reports import handle_time, rollups, selectors
from apps.reports.models import ConversationFact, CustomerFact, MetricRollup, MetricSlice, TermRollup
from tests.factories import ChannelAccountFactory, QueueFactory, TeamFactory, UserFactory

from .history import History, at, naive

BERLIN = ZoneInfo("Europe/Berlin")


def p90(values):
    # statistics' "inclusive" quantiles interpolate like numpy's default
    return statistics.quantiles(values, n=10, method="inclusive")[8] if len(values) > 1 else values[0]


@pytest.fixture
def world(db):
    team = TeamFactory(name="Care EU", time_zone="Europe/Berlin")
    queue = QueueFactory(name="General", team=team, is_default=True)
    anna, ben = UserFactory(username="anna", role="agent"), UserFactory(username="ben", role="agent")
    team.members.add(anna, ben)
    accounts = {"twitter": ChannelAccountFactory(provider="twitter", handle="@acme"),
                "demo": ChannelAccountFactory(provider="demo", handle="@acme_demo")}
    h = History(queue=queue, accounts=accounts)

    # c1: Monday 23:30 UTC (Tuesday 00:30 in Berlin), an auto-reply and a note first.
    h.customer_says("c1", at(2, 23, 30), "My parcel is late again, this is terrible #fail", who="carla")
    h.agent_replies("c1", at(2, 23, 31), None, "Thanks! An agent will answer soon.", bot=True)
    h.sla_due("c1", first_response=at(3, 0, 30))
    h.note("c1", at(2, 23, 40), anna)
    h.agent_replies("c1", at(3, 0, 10), anna, "Sorry Carla, checking now.")
    h.roll_up(at(3, 0, 12))  # incremental applies happen between the changes
    h.customer_says("c1", at(3, 0, 20), "Order 5521, still nothing.", who="carla")
    h.customer_says("c1", at(3, 0, 25), "Hello??", who="carla")
    h.agent_replies("c1", at(3, 0, 40), anna, "Found it: it ships today.", send_delay=dt.timedelta(minutes=5))
    h.customer_says("c1", at(3, 0, 55), "ok thanks", who="carla")  # unanswered when resolved
    h.status("c1", at(3, 1, 0), "resolved", anna)
    # Wednesday: she comes back (reopen, a repeat contact within 7 days)
    h.customer_says("c1", at(4, 3, 0), "It never arrived. I want a refund or I cancel", who="carla")
    h.agent_replies("c1", at(4, 3, 30), ben, "Refund issued, sorry.")
    h.status("c1", at(4, 4, 0), "resolved", ben)

    # c2: Tuesday in business hours; the first-response target is missed; closed after resolve.
    h.customer_says("c2", at(3, 10, 0), "Your app is broken and support is useless", who="dan")
    h.sla_due("c2", first_response=at(3, 10, 15))
    h.agent_replies("c2", at(3, 10, 30), ben, "Sorry Dan, fixed now?")
    h.status("c2", at(3, 11, 0), "resolved", ben)
    h.survey("c2", at(3, 11, 1), ben, score=2, answered=at(3, 12, 0))
    h.status("c2", at(3, 11, 30), "closed", ben)
    h.roll_up(at(3, 12, 5))

    # c3: demo channel, never answered (backlog); a breach from the SLA monitor.
    h.customer_says("c3", at(3, 15, 0), "Love the new design, great job #newlook", who="eve", account="demo")
    h.customer_says("c3", at(3, 15, 30), "One question about the price though", who="eve", account="demo")
    h.sla_breach_event("c3", at(3, 16, 0), "first_response")
    h.sla_breach_event("c3", at(3, 16, 5), "first_response")  # the monitor again: one breach
    # Handle time: anna and ben both on c1 (counted apart); ben goes idle for 22 minutes
    # in the middle (not counted: two sessions); anna leaves c2 and comes back within
    # the idle limit (one session, the 2 minutes away not counted).
    h.works("c1", anna, [(at(3, 0, 5), "open"), (at(3, 0, 7), "active"), (at(3, 0, 9), "active"),
                         (at(3, 0, 10), "active"), (at(3, 0, 12), "leave")])
    h.works("c1", ben, [(at(3, 0, 6), "open"), (at(3, 0, 8), "active"), (at(3, 0, 30), "active"),
                        (at(3, 0, 32), "active"), (at(3, 0, 33), "leave")])
    h.works("c2", anna, [(at(3, 10, 20), "open"), (at(3, 10, 25), "active"), (at(3, 10, 26), "leave"),
                         (at(3, 10, 28), "open"), (at(3, 10, 30), "active"), (at(3, 10, 31), "leave")])
    h.roll_up(at(5, 9, 0))
    return h


def test_service_report_matches_independent_calculation(world):
    params = selectors.ReportParams(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 5))
    report = selectors.service_report(params=params)
    expect = naive(world.script, lo=at(2, 0), hi=at(6, 0))
    t = report["totals"]

    assert sorted(expect["first_response"]) == [1800.0, 1800.0, 2400.0]
    assert t["first_response"]["count"] == 3
    assert t["first_response"]["median"] == statistics.median(expect["first_response"])
    assert t["first_response"]["p90"] == pytest.approx(p90(expect["first_response"]))
    assert t["first_response"]["mean"] == pytest.approx(statistics.mean(expect["first_response"]))

    # reply after the reopen counts from the reopening message, not from "ok thanks"
    assert sorted(expect["reply"]) == [1500.0, 1800.0, 1800.0, 2400.0]
    assert sorted(world_values("reply")) == sorted(expect["reply"])
    assert t["reply"]["median"] == statistics.median(expect["reply"])
    assert t["reply"]["p90"] == pytest.approx(p90(expect["reply"]))

    # resolve then close is one resolution; resolve, reopen, resolve is two
    assert sorted(expect["resolution"]) == [3600.0, 3600.0, 5400.0]
    assert t["resolved"] == 3
    assert t["resolution"]["median"] == statistics.median(expect["resolution"])
    assert t["opened"] == expect["opened"] == 3 and t["reopened"] == expect["reopened"] == 1
    assert t["resolution_rate"] == pytest.approx(3 / 4)
    assert t["reopen_rate"] == pytest.approx(1 / 3)

    assert t["volume_in"] == expect["in"] == 8
    assert t["volume_out"] == expect["out_human"] == 4
    assert t["volume_out_bot"] == expect["out_bot"] == 2  # auto-reply + survey link

    assert (t["sla_met"], t["sla_breached"]) == (expect["sla_met"], expect["sla_breached"]) == (1, 2)
    assert t["sla_compliance"] == pytest.approx(1 / 3)
    assert sorted(expect["handle"]) == [120.0, 180.0, 420.0, 540.0]
    assert t["handle_time"]["count"] == 4
    assert t["handle_time"]["median"] == statistics.median(expect["handle"])
    assert t["handle_time"]["p90"] == pytest.approx(p90(expect["handle"]))
    assert t["handle_time"]["mean"] == pytest.approx(statistics.mean(expect["handle"]))

    # business hours (Mon-Fri 09-17 Berlin): c1's night wait counts 0, c2's 30 minutes in full
    assert sorted(world_values("first_response_bh")) == [0.0, 0.0, 1800.0]

    by_agent = {r["agent"]: r for r in report["by_agent"]}
    # anna answered c1's first cycle twice; ben c1's second cycle and c2
    assert sorted((r["volume_out"], r["first_response"]["count"]) for r in report["by_agent"] if r["volume_out"]) \
        == [(2, 1), (2, 2)]

    assert [d["backlog"] for d in report["backlog"]] == [1, 1, 1, 1]


def world_values(metric):
    return [v for row in MetricRollup.objects.filter(grain="d", metric=metric) for v in row.values]


def test_days_follow_the_chosen_time_zone(world):
    utc = selectors.service_report(params=selectors.ReportParams(start=dt.date(2026, 11, 2),
                                                                 end=dt.date(2026, 11, 3)))
    berlin = selectors.service_report(params=selectors.ReportParams(start=dt.date(2026, 11, 2),
                                                                    end=dt.date(2026, 11, 3), tz=BERLIN))
    # the 23:30 UTC message is Monday in UTC and Tuesday in Berlin
    assert [d["volume_in"] for d in utc["by_day"]] == [1, 6]
    assert [d["volume_in"] for d in berlin["by_day"]] == [0, 7]
    assert [d["opened"] for d in utc["by_day"]] == [1, 2]
    assert [d["opened"] for d in berlin["by_day"]] == [0, 3]
    # a Berlin range starts at 23:00 UTC the day before: same totals over a whole week
    week_utc = selectors.service_report(params=selectors.ReportParams(start=dt.date(2026, 11, 3),
                                                                      end=dt.date(2026, 11, 5)))
    week_berlin = selectors.service_report(params=selectors.ReportParams(start=dt.date(2026, 11, 3),
                                                                         end=dt.date(2026, 11, 5), tz=BERLIN))
    assert week_utc["totals"]["volume_in"] == 7 and week_berlin["totals"]["volume_in"] == 8


def test_experience_report(world):
    params = selectors.ReportParams(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 5))
    report = selectors.experience_report(params=params)
    twitter = next(r for r in report["by_channel"] if r["channel"] == "twitter")
    assert twitter["csat_answers"] == 1 and twitter["csat"] == 0.0  # a 2 is not satisfied
    assert twitter["csat_sent"] == 1 and twitter["csat_response_rate"] == 1.0
    # c1's first resolution was followed by a contact within 7 days; c1's second and c2's were not (yet)
    assert report["totals"]["repeat_contacts"] == 1
    assert report["totals"]["repeat_contact_rate"] == pytest.approx(1 / 3)
    at_risk = {r["customer_id"]: r for r in report["customers_at_risk"]}
    carla = world.conversations["c1"].customer_id
    assert carla in at_risk and any("cancel" in reason for reason in at_risk[carla]["reasons"])
    shift = report["sentiment_shift"]
    assert shift["conversations"] == 2
    fact = ConversationFact.objects.get(conversation_id=world.conversations["c1"].pk)
    assert fact.resolutions == 2 and fact.reopens == 1 and fact.inbound == 5


def test_gap_report_links_and_groups(world):
    params = selectors.ReportParams(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 5))
    report = selectors.gap_report(params=params)
    c1, c2 = world.conversations["c1"].pk, world.conversations["c2"].pk
    # c1: first response met its target but the customer ended angry; c2: missed and CSAT 2 -> not in either list
    assert [r["conversation_id"] for r in report["met_but_bad"]] == [c1]
    assert report["met_but_bad"][0]["link"] == f"/inbox/c/{c1}/"
    assert c2 not in [r["conversation_id"] for r in report["missed_but_good"]]
    assert {g["name"] for g in report["by_channel"]} == {"twitter"}
    marketing = selectors.gap_report(params=selectors.ReportParams(
        start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 5), show_people=False))
    assert marketing["met_but_bad"][0]["link"] is None


def test_marketing_themes_and_masked_examples(world):
    params = selectors.ReportParams(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 5), show_people=False)
    report = selectors.marketing_report(params=params)
    hashtags = {t["term"]: t for t in report["hashtags"]}
    assert set(hashtags) == {"fail", "newlook"}
    assert hashtags["newlook"]["positive"] == 1
    topics = {t["term"]: t for t in report["topics"]}
    assert topics["delivery"]["count"] >= 1 and topics["delivery"]["negative"] >= 1
    texts = [e["text"] for t in report["topics"] for e in t["examples"]]
    assert texts and all("carla" not in x.lower() for x in texts)
    assert all("conversation_id" not in e for t in report["topics"] for e in t["examples"])
    # over time: the #newlook post was on Tuesday 3 November
    newlook = [r for r in report["hashtags_by_day"] if r["term"] == "newlook"]
    assert [r["messages"] for r in newlook] == [0, 1, 0, 0] and newlook[1]["net_sentiment"] == 100.0
    assert {r["channel"] for r in report["by_channel_day"]} == {"twitter", "demo"}


def snapshot():
    rollups = sorted(
        (r.grain, r.bucket, r.metric, r.channel, r.account_id, r.queue_id, r.team_id, r.agent_id, r.count,
         round(r.total, 6), tuple(r.values)) for r in MetricRollup.objects.all())
    terms = sorted((r.grain, r.bucket, r.channel, r.account_id, r.term_type, r.term, r.count, r.positive, r.negative,
                    r.neutral, round(r.total, 6), str(r.examples)) for r in TermRollup.objects.all())
    facts = sorted(tuple(getattr(f, x.name) for x in ConversationFact._meta.fields) for f in ConversationFact.objects.all())
    customers = sorted(tuple(str(getattr(c, x.name)) for x in CustomerFact._meta.fields) for c in CustomerFact.objects.all())
    slices = sorted((r.grain, r.bucket, r.metric, r.fdim, r.fkey, r.dim, r.key, r.count, round(r.total, 6), tuple(r.values),
                     tuple(sorted(r.hist.items()))) for r in MetricSlice.objects.all())
    return rollups, terms, facts, customers, slices


def test_rebuilt_equals_incremental(world):
    incremental = snapshot()
    assert incremental[0] and incremental[1] and incremental[2]
    rollups.rollups_rebuild()
    assert snapshot() == incremental


def test_spam_and_ignored_leave_backlog_and_rates_and_are_never_resolutions(world):
    from apps.inbox.events import event_record
    from apps.inbox.models import Conversation

    from .history import clock

    params = selectors.ReportParams(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 5))
    before = selectors.service_report(params=params)
    # c4: counted first, then an agent marks it spam (what inbox's conversation_mark_spam records)
    world.customer_says("c4", at(4, 9, 0), "cheap followers here http://spam.example", who="bot1")
    world.roll_up(at(4, 9, 1))
    c4 = Conversation.objects.get(pk=world.conversations["c4"].pk)
    with clock(at(4, 9, 5)):
        Conversation.objects.filter(pk=c4.pk).update(is_spam=True)
        c4.is_spam = True
        event_record(conversation=c4, kind="marked_spam")
        # closing it later is not a resolution either
        Conversation.objects.filter(pk=c4.pk).update(status="closed")
        event_record(conversation=c4, kind="status_changed", old="open", new="closed")
    # c5: a routing rule closes it as spam before reports ever counted it
    world.customer_says("c5", at(4, 9, 30), "win a prize now", who="bot2")
    c5 = Conversation.objects.get(pk=world.conversations["c5"].pk)
    with clock(at(4, 9, 31)):
        Conversation.objects.filter(pk=c5.pk).update(is_spam=True, status="closed")
        c5.is_spam, c5.status = True, "closed"
        event_record(conversation=c5, kind="status_changed", old="new", new="closed", reason="spam (routing rule)")
    world.roll_up(at(5, 10, 0))
    after = selectors.service_report(params=params)
    b, a = before["totals"], after["totals"]
    assert a["resolved"] == b["resolved"] == 3
    assert a["resolution_rate"] == b["resolution_rate"]
    assert [d["backlog"] for d in after["backlog"]] == [d["backlog"] for d in before["backlog"]]
    # spam leaves every metric: c4 was counted (its message read) before it was called spam; c5 never counts
    assert (a["opened"], a["dismissed"]) == (b["opened"], 0)
    assert a["volume_in"] == b["volume_in"]
    # unmarking spam puts all of c4 back, as if it had never been spam: its cycle, its message and
    # its close (a close without resolve is the cycle's resolution)
    with clock(at(5, 11, 0)):
        Conversation.objects.filter(pk=c4.pk).update(is_spam=False)
        c4.is_spam = False
        event_record(conversation=c4, kind="unmarked_spam")
    world.roll_up(at(5, 11, 1))
    again = selectors.service_report(params=params)["totals"]
    assert (again["opened"], again["volume_in"], again["resolved"], again["dismissed"]) == (
        b["opened"] + 1, b["volume_in"] + 1, b["resolved"] + 1, 0)
    incremental = snapshot()
    rollups.rollups_rebuild()
    assert snapshot() == incremental


def test_handle_time_per_agent_counts_active_time_only(world):
    params = selectors.ReportParams(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 5))
    report = selectors.service_report(params=params)
    from apps.accounts.models import User

    by_agent = {r["agent_id"]: r for r in report["by_agent"]}
    anna, ben = (by_agent[User.objects.get(username=n).pk] for n in ("anna", "ben"))
    # anna: 7 minutes on c1, 9 on c2 (the 2 minutes away not counted); ben: 2 + 3 minutes on c1,
    # the 22 idle minutes between them not counted
    assert (anna["handle_time"]["count"], anna["handle_time"]["mean"], anna["handle_time_total"]) == (2, 480.0, 960.0)
    assert (ben["handle_time"]["count"], ben["handle_time"]["median"], ben["handle_time_total"]) == (2, 150.0, 300.0)
    # by queue and team like the other figures, and in local days: ben's second session ended 00:33 UTC
    assert [d["handle_time"]["count"] for d in report["by_day"]] == [0, 4, 0, 0]
    assert report["by_queue"][0]["handle_time"]["count"] == 4
    assert "Handle time" in report["definitions"]["handle_time"]


def test_work_session_left_open_is_closed_at_its_last_activity(world):
    """A tab left open (no leave, no input) counts until the last activity only."""
    from apps.reports.models import WorkSession

    from .history import clock

    agent = UserFactory(username="cleo", role="agent")
    world.works("c3", agent, [(at(4, 9, 0), "open"), (at(4, 9, 4), "active"), (at(4, 9, 8), "active")])
    with clock(at(4, 9, 12)):
        assert handle_time.work_sessions_close_idle() == 0  # 4 minutes since the last activity: still working
    world.roll_up(at(4, 11, 0))
    session = WorkSession.objects.get(agent_id=agent.pk)
    assert session.ended_at == at(4, 9, 8) and session.active_seconds == 480.0
    report = selectors.service_report(params=selectors.ReportParams(start=dt.date(2026, 11, 4),
                                                                    end=dt.date(2026, 11, 4)))
    row = next(r for r in report["by_agent"] if r["agent_id"] == agent.pk)
    assert row["handle_time"]["median"] == 480.0 and row["handle_time"]["count"] == 1


def test_business_hours_come_from_each_teams_calendar(world):
    """Two teams with different calendars; a team without one falls back to the setting."""
    from apps.routing.models import BusinessHours, Holiday

    from .history import History

    ams = TeamFactory(name="Care AMS", time_zone="Europe/Amsterdam")
    hours = BusinessHours.objects.create(team=ams, time_zone="Europe/Amsterdam", schedule={
        day: [["08:00", "12:00"], ["13:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")})
    nyc = TeamFactory(name="Care NYC", time_zone="America/New_York")
    ny_hours = BusinessHours.objects.create(team=nyc, time_zone="America/New_York", schedule={
        day: [["07:00", "20:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat")})
    Holiday.objects.create(business_hours=ny_hours, date=dt.date(2026, 11, 4), name="closed")
    del hours
    eu = History(queue=QueueFactory(name="AMS", team=ams), accounts=world.accounts)
    us = History(queue=QueueFactory(name="NYC", team=nyc), accounts=world.accounts)
    anna = UserFactory(username="ana2", role="agent")
    for h, tag in ((eu, "eu"), (us, "us")):
        # Tuesday 10:00-14:00 UTC, and Wednesday 13:00-15:00 UTC
        h.customer_says(f"{tag}1", at(3, 10, 0), "Where is my order?", who=f"{tag}-one")
        h.agent_replies(f"{tag}1", at(3, 14, 0), anna, "Here it is.")
        h.customer_says(f"{tag}2", at(4, 13, 0), "And the invoice?", who=f"{tag}-two")
        h.agent_replies(f"{tag}2", at(4, 15, 0), anna, "Sent.")
    world.roll_up(at(5, 9, 0))
    params = selectors.ReportParams(start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 5))
    report = selectors.service_report(params=params)
    by_team = {r["team"]: r for r in report["by_team"]}

    def values(team, metric):
        return sorted(v for r in MetricRollup.objects.filter(grain="d", metric=metric, team_id=team.pk)
                      for v in r.values)

    # Amsterdam (UTC+1): 11:00-15:00 local minus lunch = 3 h; Wednesday 14:00-16:00 local = 2 h
    assert values(ams, "first_response_bh") == [7200.0, 10800.0]
    # New York (UTC-5): 05:00-09:00 local from 07:00 = 2 h; Wednesday is its holiday = 0
    assert values(nyc, "first_response_bh") == [0.0, 7200.0]
    assert values(ams, "first_response") == values(nyc, "first_response") == [7200.0, 14400.0]
    assert by_team["Care AMS"]["first_response_business"]["mean"] == 9000.0
    assert by_team["Care NYC"]["first_response_business"]["mean"] == 3600.0
    # the world's team has no calendar: REPORTS_BUSINESS_HOURS (Mon-Fri 09-17) in Berlin time
    assert by_team["Care EU"]["first_response_business"]["count"] == 3
