"""Issue 22: the industry definitions (first response once per conversation, full resolution
time, a cohort resolution rate) beside the per-cycle ones, and per-agent attribution (breach
to the agent assigned at breach time, resolution to the resolver, rates over handled cycles).

The history runs through the real services: ingest, routing, the inbox's assign, reply, send
and status, the SLA monitor. The expected figures are computed in plain Python from this
test's own script (SCRIPT), never from product tables; the reports are read through
/api/v1/reports/service/, before and after `reports_rebuild`."""
from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import statistics

import pytest
from django.core.management import call_command

from apps.connectors.providers.base import InboundMention
from apps.inbox import sending as inbox_sending
from apps.inbox import services as inbox
from apps.inbox.models import Conversation, Message
from apps.ingest.services import mentions_ingest
from apps.reports import inbound, rollups
from apps.routing.models import SlaPolicy
from apps.routing.services import conversation_route
from apps.routing.sla import sla_breaches_check
from tests.factories import ChannelAccountFactory, QueueFactory, TeamFactory, UserFactory

from .history import at, clock

pytestmark = pytest.mark.django_db
_ids = itertools.count(770000)

# (when, conversation, action, who): the history, in time order. Agents are offline, so
# routing queues the work and the assignments are the script's own.
SCRIPT = [
    (at(2, 9, 0), "x", "in", None),
    (at(2, 9, 10), "x", "assign", "alice"),
    (at(2, 9, 20), "x", "reply", "alice"),
    (at(2, 10, 0), "x", "resolve", "alice"),
    (at(2, 10, 0), "y", "in", None),
    (at(2, 10, 31), None, "monitor", None),  # y's first response (due 10:30) breached, nobody assigned
    (at(2, 11, 0), "y", "assign", "alice"),
    (at(2, 11, 0), "z", "in", None),
    (at(2, 11, 5), "z", "assign", "bob"),
    (at(2, 11, 15), "y", "reply", "alice"),
    (at(2, 11, 31), None, "monitor", None),  # z's breached: bob holds it
    (at(2, 11, 40), "z", "reply", "bob"),
    (at(2, 12, 0), "x", "in", None),  # x reopens (ingest unassigns; the agents are offline)
    (at(2, 12, 0), "z", "resolve", "bob"),
    (at(2, 12, 30), "x", "assign", "bob"),
    (at(2, 12, 30), "z", "reopen", "bob"),  # an agent's reopen: bob still holds it
    (at(2, 12, 45), None, "monitor", None),  # x's second cycle (due 12:30) breached: bob holds it
    (at(2, 13, 0), "x", "reply", "bob"),
    (at(2, 13, 0), "z", "resolve", "bob"),
    (at(2, 14, 0), "x", "resolve", "bob"),
    (at(3, 9, 0), "w", "in", None),  # never handled
]
SLA_MINUTES = 30
LO, HI = at(2, 0), at(4, 0)  # the report's range: 2-3 Nov, UTC


def expected() -> dict:
    """The definitions, the obvious way, from SCRIPT alone."""
    conv: dict[str, dict] = {}
    cycles: list[dict] = []
    out = {"frt_conv": [], "frt_cycle": [], "res_full": {}, "res_cycle": [], "cycles": 0,
           "handled": {}, "resolved_by": {}, "breached_by": {}, "met_by": {}}
    for when, name, action, who in SCRIPT:
        if action == "monitor":
            for c in conv.values():
                cycle = c["cycle"]
                if cycle["replied"] is None and not cycle["decided"] and when >= cycle["due"]:
                    cycle["decided"] = True
                    holder = c["assignee"] or "(unassigned)"
                    out["breached_by"][holder] = out["breached_by"].get(holder, 0) + 1
            continue
        c = conv.get(name)
        if action == "in" and (c is None or c["resolved"]):
            if c is None:
                c = conv[name] = {"first": when, "first_reply": None, "assignee": None, "resolved": False}
            else:
                c["resolved"], c["assignee"] = False, None  # ingest reopens, unassigned
            c["cycle"] = {"start": when, "replied": None, "decided": False,
                          "due": when + dt.timedelta(minutes=SLA_MINUTES), "handlers": set()}
            cycles.append(c["cycle"])
        elif action == "assign":
            c["assignee"] = who
            c["cycle"]["handlers"].add(who)
        elif action == "reply":
            if c["first_reply"] is None:
                c["first_reply"] = when
                out["frt_conv"].append((when - c["first"]).total_seconds())
            cycle = c["cycle"]
            if cycle["replied"] is None:
                cycle["replied"] = when
                out["frt_cycle"].append((when - cycle["start"]).total_seconds())
                if not cycle["decided"]:
                    cycle["decided"] = True
                    book = out["met_by"] if when <= cycle["due"] else out["breached_by"]
                    book[who] = book.get(who, 0) + 1
        elif action == "resolve":
            c["resolved"] = True
            resolver = c["assignee"] or who
            c["cycle"]["handlers"].add(resolver)
            out["resolved_by"][resolver] = out["resolved_by"].get(resolver, 0) + 1
            out["res_cycle"].append((when - c["cycle"]["start"]).total_seconds())
            out["res_full"][name] = (when - c["first"]).total_seconds()  # a later resolve replaces it
        elif action == "reopen":  # an agent's reopen: the agent still assigned handles the new cycle
            c["resolved"] = False
            c["cycle"] = {"start": when, "replied": None, "decided": True, "due": when, "handlers": {c["assignee"]}}
            cycles.append(c["cycle"])
    out["cycles"] = len(cycles)
    for cycle in cycles:
        for agent in cycle["handlers"]:
            out["handled"][agent] = out["handled"].get(agent, 0) + 1
    out["res_full"] = [v for name, v in out["res_full"].items() if conv[name]["resolved"]]
    out["opened"] = len(conv)
    out["cohort_resolved"] = sum(1 for c in conv.values() if c["resolved"])
    return out


@pytest.fixture
def world(db):
    team = TeamFactory(name="Care", time_zone="UTC")
    QueueFactory(name="General", team=team, is_default=True)
    agents = {name: UserFactory(username=name, role="agent", presence="offline") for name in ("alice", "bob")}
    team.members.add(*agents.values())
    SlaPolicy.objects.create(name="fast", first_response_minutes=SLA_MINUTES)
    account = ChannelAccountFactory(provider="twitter", handle="@acme")
    conversations: dict[str, Conversation] = {}

    def fresh(name):
        return Conversation.objects.get(pk=conversations[name].pk)

    for when, name, action, who in SCRIPT:
        agent = agents.get(who)
        with clock(when):
            if action == "in":
                ext = str(next(_ids))
                mentions_ingest(account=account, mentions=[InboundMention(
                    external_id=ext, text=f"@acme help with my order, {name}", created_at=when,
                    author_external_id=f"cust-{name}", author_handle=name, author_name=name.title(),
                    thread_id=f"thread-{name}")])
                message = Message.objects.get(channel_account=account, external_id=ext)
                conversations[name] = message.conversation
                conversation_route(conversation_id=message.conversation_id, message_ids=[message.pk])
            elif action == "monitor":
                sla_breaches_check(now=when)
            elif action == "assign":
                inbox.conversation_assign(conversation=fresh(name), assignee=agent, actor=agent)
            elif action == "reply":
                reply = inbox.reply_create(conversation=fresh(name), agent=agent, text="On it, sorry!")
                inbox_sending.message_mark_sent(message_id=reply.pk, external_id=str(next(_ids)))
            elif action == "resolve":
                inbox.conversation_status_set(conversation=fresh(name), status="resolved", actor=agent)
            elif action == "reopen":
                inbox.conversation_status_set(conversation=fresh(name), status="open", actor=agent)
            # the reports task runs between the changes, as on its schedule
            inbound.inbound_messages_record()
            rollups.rollups_apply()
    with clock(at(4, 1)):
        inbound.inbound_messages_record(now=at(4, 1))
        rollups.rollups_apply()
    return agents


def service(client, **query) -> dict:
    response = client.get("/api/v1/reports/service/", {"start": "2026-11-02", "end": "2026-11-03", "tz": "UTC",
                                                       **query})
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def reader(api_client):
    api_client.force_authenticate(UserFactory(role="supervisor"))
    return api_client


def _check(report: dict, agents) -> None:
    want = expected()
    t = report["totals"]
    # first response: once per conversation (x's reopen does not start it again) and per cycle beside it
    assert t["first_response_conversation"]["count"] == len(want["frt_conv"]) == 3
    assert t["first_response_conversation"]["median"] == statistics.median(want["frt_conv"])
    assert t["first_response"]["count"] == len(want["frt_cycle"]) == 4
    assert t["first_response"]["median"] == statistics.median(want["frt_cycle"])
    # full resolution time: first contact -> final resolve (z's first resolve, reopened, is not one)
    assert sorted(want["res_full"]) == [2 * 3600, 5 * 3600]
    assert t["resolution_full"]["count"] == 2
    assert t["resolution_full"]["median"] == statistics.median(want["res_full"])
    assert t["resolution"]["count"] == len(want["res_cycle"]) == 4
    # the cohort rate: of the 4 opened, resolved now; the per-cycle one beside it by its own name
    assert (t["cohort_opened"], t["cohort_resolved"]) == (want["opened"], want["cohort_resolved"]) == (4, 2)
    assert t["cohort_resolution_rate"] == pytest.approx(0.5)
    assert t["resolution_rate"] == pytest.approx(len(want["res_cycle"]) / want["cycles"])
    for day in report["by_day"]:
        assert day["cohort_resolution_rate"] is None or day["cohort_resolution_rate"] <= 1
    # per agent
    rows = {r["agent"]: r for r in report["by_agent"]}
    for name, user in agents.items():
        row = rows[user.display_name]
        assert row["resolved"] == want["resolved_by"].get(name, 0)
        assert row["handled"] == want["handled"][name]
        assert row["handled_resolved"] == want["resolved_by"].get(name, 0)
        assert row["handled_resolution_rate"] == pytest.approx(want["resolved_by"].get(name, 0)
                                                               / want["handled"][name])
        assert row["handled_resolution_rate"] <= 1
        assert row["sla_breached"] == want["breached_by"].get(name, 0)
        assert row["sla_met"] == want["met_by"].get(name, 0)
    assert want["breached_by"] == {"(unassigned)": 1, "bob": 2}
    assert rows["(unassigned)"]["sla_breached"] == 1
    assert (rows[agents["alice"].display_name]["handled_resolution_rate"],
            rows[agents["bob"].display_name]["handled_resolution_rate"]) == (0.5, 1.0)


def test_definitions_and_attribution_through_the_api_before_and_after_a_rebuild(world, reader):
    before = service(reader)
    _check(before, world)
    call_command("reports_rebuild", verbosity=0)
    after = service(reader)
    _check(after, world)
    assert {k: v for k, v in after.items()} == before


def test_one_agent_filter_keeps_the_rates_within_100_percent(world, reader):
    bob = world["bob"]
    report = service(reader, agent=bob.pk)
    assert report["totals"]["handled"] == expected()["handled"]["bob"]
    assert report["totals"]["handled_resolution_rate"] == 1.0
    assert report["totals"]["resolved"] == 3


def test_definitions_are_stated_on_the_page_and_in_the_csv(world, reader, client):
    report = service(reader)
    defs = report["definitions"]
    assert "Once per conversation" in defs["first_response_conversation"]
    assert "First response per cycle" in defs["first_response"]
    assert "final resolve" in defs["resolution_full"]
    assert "share resolved now" in defs["cohort_resolution_rate"]
    assert "Resolutions / cycles started" in defs["resolution_rate"]
    assert "(unassigned)" in defs["agents"] and "handled" in defs["agents"]

    client.force_login(UserFactory(role="supervisor"))
    page = client.get("/reports/service/", {"start": "2026-11-02", "end": "2026-11-03", "tz": "UTC"})
    html = page.content.decode()
    assert "Definitions used in this report" in html
    for label in ("First response time", "First response per cycle", "Full resolution time",
                  "Resolution time per cycle", "Resolutions / cycles started", "Per-agent attribution",
                  "Resolution rate (cycles handled)"):
        assert label in html, label
    assert "2 of 4 opened in the period resolved now" in html

    # the full CSV opens with the definitions table; a script can read it with the csv module
    body = reader.get("/api/v1/reports/service/", {"start": "2026-11-02", "end": "2026-11-03", "tz": "UTC",
                                                   "format": "csv"}).content.decode()
    lines = list(csv.reader(io.StringIO(body)))
    assert lines[0] == ["# definitions"] and lines[1] == ["definition", "columns", "meaning"]
    meanings = {row[0]: row for row in lines[2:] if len(row) == 3}
    assert meanings["first_response_conversation"][1] == "first_response_conversation_*"
    assert "Once per conversation" in meanings["first_response_conversation"][2]
    assert "per cycle" in meanings["first_response"][1]
    totals = lines.index(["# totals"])
    header = lines[totals + 1]
    assert {"first_response_conversation_median", "first_response_median", "resolution_full_median",
            "resolution_median", "cohort_resolution_rate", "resolution_rate"} <= set(header)
    one = reader.get("/api/v1/reports/service/", {"start": "2026-11-02", "end": "2026-11-03", "tz": "UTC",
                                                  "format": "csv", "table": "definitions"})
    assert one.status_code == 200
    rows = list(csv.DictReader(io.StringIO(one.content.decode())))
    assert {r["definition"] for r in rows} >= {"first_response_conversation", "resolution_full",
                                               "cohort_resolution_rate", "agents"}
