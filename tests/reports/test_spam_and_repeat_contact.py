"""Spam and repeat contacts, driven through the product's own services and read over the API.

Spam (issue 22, item 2): a conversation marked spam, by an agent (inbox conversation_mark_spam)
or by a routing rule, is out of every metric whatever the order of events (a breach by the SLA
monitor then the mark; the mark then the due time passing; a message the reports task read
before the mark) and whenever the reports task runs; unmarking puts it all back.

Repeat contact (item 1): only a customer's new message after a resolve counts (the same
conversation reopened by it, or a new one, also on another channel); an agent's reopen with no
customer message does not.

The expected figures are computed in plain Python from the script below, never from product
tables; each interleaving of the reports task must give them, and so must reports_rebuild."""
import datetime as dt
import itertools
from contextlib import contextmanager
from unittest import mock

import pytest
from django.core.management import call_command

from apps.connectors.providers.base import InboundMention
from apps.contacts.models import SocialIdentity
from apps.inbox import sending as inbox_sending
from apps.inbox import services as inbox
from apps.inbox.models import Conversation, Message
from apps.ingest.services import mentions_ingest
from apps.reports import handle_time, inbound
from apps.reports.rollups import rollups_apply
from apps.routing import sla
from apps.routing.models import RoutingRule, SlaPolicy
from apps.routing.services import conversation_route
from apps.routing.tasks import conversation_followup_task
from tests.factories import ChannelAccountFactory, QueueFactory, TeamFactory, UserFactory

UTC = dt.timezone.utc
WINDOW = dt.timedelta(days=7)
DUE = dt.timedelta(minutes=30)  # the SLA policy's first response
_ids = itertools.count(700000)

POSITIVE = "Thank you so much, great help, I love it!"
NEGATIVE = "This is awful, terrible service, I hate it."


def at(day: int, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hh, mm, tzinfo=UTC)


@contextmanager
def clock(moment: dt.datetime):
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


class Script:
    """Drives the services and keeps its own record of what happened (self.log)."""

    def __init__(self, *, accounts, agent, eager: bool):
        self.accounts, self.agent, self.eager = accounts, agent, eager
        self.log: list[tuple] = []  # (kind, conversation name, time, extra)
        self.conversations: dict[str, Conversation] = {}
        self.customer_of: dict[str, str] = {}

    def conv(self, name) -> Conversation:
        return Conversation.objects.get(pk=self.conversations[name].pk)

    def reports_task(self, when):
        """What reports.apply_rollups does on its schedule."""
        with clock(when):
            inbound.inbound_messages_record(now=when)
            handle_time.work_sessions_close_idle()
            rollups_apply()

    def maybe_task(self, when):
        if self.eager:
            self.reports_task(when)

    def says(self, name, when, text, *, who, account="twitter", label):
        ext = str(next(_ids))
        mention = InboundMention(external_id=ext, text=text, created_at=when, author_external_id=f"cust-{who}",
                                 author_handle=who, author_name=who.title(), thread_id=f"thread-{name}")
        with clock(when):
            mentions_ingest(account=self.accounts[account], mentions=[mention])
        message = Message.objects.get(channel_account=self.accounts[account], external_id=ext)
        self.conversations[name] = message.conversation
        self.customer_of[name] = who
        with clock(when + dt.timedelta(seconds=20)):  # the routing worker
            conversation_route(conversation_id=message.conversation_id, message_ids=[message.pk])
        self.log.append(("in", name, when, label))
        self.maybe_task(when + dt.timedelta(minutes=1))
        return message

    def replies(self, name, when):
        with clock(when):
            message = inbox.reply_create(conversation=self.conv(name), agent=self.agent, text="Sorry, on it now.")
            inbox_sending.message_mark_sent(message_id=message.pk, external_id=str(next(_ids)))
        self.log.append(("reply", name, when, None))
        self.maybe_task(when + dt.timedelta(minutes=1))

    def status(self, name, when, status):
        with clock(when):
            inbox.conversation_status_set(conversation=self.conv(name), status=status, actor=self.agent)
        self.log.append((status, name, when, None))
        self.maybe_task(when + dt.timedelta(minutes=1))

    def spam(self, name, when, spam=True):
        with clock(when):
            inbox.conversation_mark_spam(conversation=self.conv(name), actor=self.agent, spam=spam)
        with clock(when + dt.timedelta(seconds=10)):  # the routing worker hears of it after the commit
            conversation_followup_task(self.conversations[name].pk)
        self.log.append(("spam" if spam else "unspam", name, when, None))
        self.maybe_task(when + dt.timedelta(minutes=1))

    def sla_monitor(self, when):
        with clock(when):
            sla.sla_breaches_check(now=when)
        self.log.append(("monitor", None, when, None))
        self.maybe_task(when + dt.timedelta(minutes=1))


def expected(log: list[tuple], customer_of: dict[str, str], rule_spam: set[str]) -> dict:
    """The figures, from the script alone: spam = the last mark of a conversation (and what a
    routing rule called spam); cycles, replies, resolutions and SLA from the order of events."""
    spam = set(rule_spam)
    for kind, name, _, _ in log:
        if kind in ("spam", "unspam"):
            (spam.add if kind == "spam" else spam.discard)(name)
    status, cycles = {}, []  # cycle: {name, start, by_customer, first_reply, resolved_at}
    current = {}
    messages, resolutions = [], []
    for kind, name, when, extra in sorted(log, key=lambda e: e[2]):
        if name in spam or kind == "monitor":
            continue
        if kind == "in":
            messages.append((name, when, extra))
            if name not in status or status[name] == "resolved":
                current[name] = {"name": name, "start": when, "by_customer": True, "first_reply": None,
                                 "resolved_at": None, "reopen": name in status}
                cycles.append(current[name])
                status[name] = "open"
        elif kind == "reply":
            if current[name]["first_reply"] is None:
                current[name]["first_reply"] = when
        elif kind == "open":  # an agent's reopen: a cycle, no customer contact
            current[name] = {"name": name, "start": when, "by_customer": False, "first_reply": None,
                             "resolved_at": None, "reopen": True}
            cycles.append(current[name])
            status[name] = "open"
        elif kind == "resolved":
            current[name]["resolved_at"] = when
            status[name] = "resolved"
            resolutions.append((name, when))
    met = breached = 0
    for c in cycles:
        if not c["by_customer"]:
            continue  # routing times the SLA of the cycles a customer starts
        due = c["start"] + DUE
        if c["first_reply"] is not None and c["first_reply"] <= due:
            met += 1
        elif c["resolved_at"] is None or c["resolved_at"] > due:
            breached += 1
    repeat = sum(1 for name, t in resolutions
                 if any(customer_of[m] == customer_of[name] and t < when <= t + WINDOW for m, when, _ in messages))
    return {
        "volume_in": len(messages), "opened": sum(1 for c in cycles if not c["reopen"]),
        "reopened": sum(1 for c in cycles if c["reopen"]), "resolved": len(resolutions),
        "first_responses": sum(1 for c in cycles if c["first_reply"] is not None),
        "sla_met": met, "sla_breached": breached, "repeat_contacts": repeat,
        "positive": sum(1 for *_, label in messages if label == "positive"),
        "negative": sum(1 for *_, label in messages if label == "negative"),
        "dismissed": 0,
    }


@pytest.fixture
def world(db, settings):
    settings.REPORTS_CACHE = False
    team = TeamFactory(name="Care", time_zone="UTC")
    QueueFactory(name="General", team=team, is_default=True)
    agent = UserFactory(username="anna", role="agent", presence="online")
    team.members.add(agent)
    SlaPolicy.objects.create(name="Standard", first_response_minutes=30)
    RoutingRule.objects.create(name="Crypto spam", regex=r"free\s+crypto", disposition="spam", stop=True)
    accounts = {"twitter": ChannelAccountFactory(provider="twitter", handle="@acme"),
                "demo": ChannelAccountFactory(provider="demo", handle="@acme_demo")}
    supervisor = UserFactory(role="supervisor")
    return {"accounts": accounts, "agent": agent, "supervisor": supervisor}


def drive(s: Script) -> set[str]:
    """Every order of events; returns the conversations a routing rule marked spam."""
    # A: a breach by the SLA monitor, the message read by the reports task, then marked spam.
    s.says("a", at(3, 9, 0), NEGATIVE, who="ann", label="negative")
    s.sla_monitor(at(3, 9, 31))
    s.reports_task(at(3, 9, 35))
    s.spam("a", at(3, 9, 40))
    # B: marked spam before its due time (the monitor finds nothing), unmarked after it:
    # the breach it would have had is counted, at its due time.
    s.says("b", at(3, 10, 0), NEGATIVE, who="bob", label="negative")
    s.spam("b", at(3, 10, 10))
    s.sla_monitor(at(3, 10, 31))
    s.spam("b", at(3, 11, 0), spam=False)
    # C: a routing rule marks it spam as it arrives.
    s.says("c", at(3, 11, 30), "FREE crypto giveaway, click now", who="cat", label="other")
    # D: read, answered in time, marked spam, unmarked, resolved: counted whole.
    s.says("d", at(3, 12, 0), POSITIVE, who="dan", label="positive")
    s.reports_task(at(3, 12, 2))
    s.replies("d", at(3, 12, 10))
    s.spam("d", at(3, 12, 20))
    s.reports_task(at(3, 12, 25))
    s.spam("d", at(3, 13, 0), spam=False)
    s.status("d", at(3, 13, 30), "resolved")
    # E: an agent reopens a resolved conversation, no customer message: no repeat contact.
    s.says("e", at(3, 14, 0), POSITIVE, who="eve", label="positive")
    s.replies("e", at(3, 14, 10))
    s.status("e", at(3, 14, 30), "resolved")
    s.status("e", at(3, 15, 5), "open")
    s.status("e", at(3, 15, 30), "resolved")
    # F: the customer writes again after the resolve, reopening it: a repeat contact.
    s.says("f", at(3, 16, 0), NEGATIVE, who="fay", label="negative")
    s.replies("f", at(3, 16, 10))
    s.status("f", at(3, 16, 30), "resolved")
    s.says("f", at(3, 17, 0), NEGATIVE, who="fay", label="negative")
    s.replies("f", at(3, 17, 5))
    s.status("f", at(3, 17, 20), "resolved")
    # G: the same customer comes back the next day on another channel: a repeat contact.
    s.says("g1", at(3, 18, 0), POSITIVE, who="gus", label="positive")
    s.replies("g1", at(3, 18, 10))
    s.status("g1", at(3, 18, 30), "resolved")
    gus = s.conv("g1").customer
    SocialIdentity.objects.create(customer=gus, provider="demo", external_id="cust-gus", handle="gus")
    s.says("g2", at(4, 9, 0), POSITIVE, who="gus", account="demo", label="positive")
    assert s.conv("g2").customer_id == gus.pk and s.conv("g2").channel_account.provider == "demo"
    s.replies("g2", at(4, 9, 10))
    s.status("g2", at(4, 9, 30), "resolved")
    # H: a customer's new conversation after a resolve is marked spam (no repeat contact),
    # later unmarked (a repeat contact again).
    s.says("h1", at(3, 19, 0), POSITIVE, who="hal", label="positive")
    s.replies("h1", at(3, 19, 10))
    s.status("h1", at(3, 19, 30), "resolved")
    s.says("h2", at(4, 10, 0), NEGATIVE, who="hal", label="negative")
    s.spam("h2", at(4, 10, 5))
    s.reports_task(at(4, 10, 10))
    s.spam("h2", at(4, 10, 20), spam=False)
    s.spam("h2", at(4, 10, 40))  # and spam again: out for good
    s.spam("h2", at(4, 11, 0), spam=False)  # no: back for good
    s.replies("h2", at(4, 11, 5))
    # the reports' resolution of H1 is repeated by h2 only while h2 is not spam; the monitor
    # runs once more at the end (h2's due time passed while it was spam for a while)
    s.sla_monitor(at(4, 12, 0))
    s.reports_task(at(4, 12, 5))
    c = s.conv("c")
    assert c.is_spam and c.status == "closed"
    return {"c"}


def figures(client, tz="UTC"):
    query = {"start": "2026-11-02", "end": "2026-11-05", "tz": tz}
    service = client.get("/api/v1/reports/service/", query)
    experience = client.get("/api/v1/reports/experience/", query)
    gap = client.get("/api/v1/reports/gap/", query)
    assert service.status_code == experience.status_code == gap.status_code == 200
    return service.json(), experience.json(), gap.json()


def picked(service, experience) -> dict:
    t, e = service["totals"], experience["totals"]
    return {
        "volume_in": t["volume_in"], "opened": t["opened"], "reopened": t["reopened"], "resolved": t["resolved"],
        "first_responses": t["first_response"]["count"], "sla_met": t["sla_met"],
        "sla_breached": t["sla_breached"], "repeat_contacts": e["repeat_contacts"], "positive": e["positive"],
        "negative": e["negative"], "dismissed": t["dismissed"],
    }


@pytest.mark.parametrize("eager", [True, False], ids=["task-after-every-step", "task-at-the-end"])
def test_spam_is_out_of_every_metric_in_any_order_and_repeat_contacts_are_customer_contacts(world, client, eager):
    s = Script(accounts=world["accounts"], agent=world["agent"], eager=eager)
    rule_spam = drive(s)
    want = expected(s.log, s.customer_of, rule_spam)
    # the script's own reading: A and C out; B, D, H2 back; E's agent reopen no repeat contact,
    # F (same conversation), G (another channel) and H (unmarked) one each
    assert want == {"volume_in": 9, "opened": 8, "reopened": 2, "resolved": 8, "first_responses": 8,
                    "sla_met": 7, "sla_breached": 2, "repeat_contacts": 3, "positive": 5, "negative": 4,
                    "dismissed": 0}
    client.force_login(world["supervisor"])
    service, experience, gap = figures(client)
    assert picked(service, experience) == want
    # the spam conversations are nowhere: not in the gap lists, the sentiment shift or at risk
    spam_ids = {s.conversations[n].pk for n in ("a", "c")}
    text = str(gap) + str(experience)
    for pk in spam_ids:
        assert f"/inbox/c/{pk}/" not in text
    at_risk = {r["customer_id"] for r in experience["customers_at_risk"]}
    assert s.conv("a").customer_id not in at_risk and s.conv("f").customer_id in at_risk  # two negative messages
    berlin = figures(client, "Europe/Berlin")

    call_command("reports_rebuild", verbosity=0)
    assert figures(client) == (service, experience, gap)
    assert figures(client, "Europe/Berlin") == berlin


def test_agent_reopen_alone_is_no_repeat_contact_but_a_customer_message_after_it_is(world, client):
    s = Script(accounts=world["accounts"], agent=world["agent"], eager=True)
    s.says("e", at(3, 14, 0), POSITIVE, who="eve", label="positive")
    s.replies("e", at(3, 14, 10))
    s.status("e", at(3, 14, 30), "resolved")
    s.status("e", at(3, 15, 5), "open")  # 35 minutes later, the agent's own reopen
    s.status("e", at(3, 15, 30), "resolved")
    client.force_login(world["supervisor"])
    service, experience, _ = figures(client)
    assert (service["totals"]["reopened"], experience["totals"]["resolved"]) == (1, 2)
    assert experience["totals"]["repeat_contacts"] == 0
    # the customer writes the next day, on the same thread: the last resolution was followed
    s.says("e", at(4, 9, 0), NEGATIVE, who="eve", label="negative")
    service, experience, _ = figures(client)
    want = expected(s.log, s.customer_of, set())
    assert experience["totals"]["repeat_contacts"] == want["repeat_contacts"] == 2  # both resolves were within 7 days
    assert experience["totals"]["repeat_contact_rate"] == pytest.approx(2 / 2)
    # eight days later is outside the window: nothing more
    s.status("e", at(4, 9, 30), "resolved")
    s.says("e", at(12, 10, 0), POSITIVE, who="eve", label="positive")
    service, experience, _ = figures(client)
    assert experience["totals"]["repeat_contacts"] == 2 and experience["totals"]["resolved"] == 3


def test_conversations_spam_before_the_marks_existed_get_one_and_leave_the_figures(world, client):
    """Migration 0016: a conversation marked spam before spam marks existed (its message counted)."""
    import importlib

    from django.apps import apps as django_apps

    from apps.reports.models import MetricEvent

    s = Script(accounts=world["accounts"], agent=world["agent"], eager=True)
    s.says("old", at(3, 9, 0), NEGATIVE, who="oli", label="negative")
    Conversation.objects.filter(pk=s.conversations["old"].pk).update(is_spam=True)  # as before the marks
    client.force_login(world["supervisor"])
    assert figures(client)[0]["totals"]["volume_in"] == 1
    migration = importlib.import_module("apps.reports.migrations.0016_spam_marks_for_spam_conversations")
    migration.spam_marks(django_apps, None)
    migration.spam_marks(django_apps, None)  # twice: one mark
    assert MetricEvent.objects.filter(kind="spam", conversation_id=s.conversations["old"].pk).count() == 1
    s.reports_task(at(3, 10, 0))
    assert figures(client)[0]["totals"]["volume_in"] == 0
