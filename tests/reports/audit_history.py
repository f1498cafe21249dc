"""The audit history of issue 22, driven through the product's real services, and the
figures the reports must show for it, computed in plain Python from the script's own
events (never from product tables, never from the product's stored sentiment).

Three teams (Los Angeles, Berlin, Kolkata) with their own calendars and holidays; X, email
and Mastodon accounts on the stand-in networks (real tweepy / smtplib / httpx clients);
customer messages through `mentions_ingest` (routing runs: rules, SLA due times); replies
through `reply_create` and the outbound task (one refused by the network, then retried);
the SLA monitor (`sla_breaches_check`) for breaches; spam through `conversation_mark_spam`
(early, late, and unmarked); reopens by customers and by an agent; an auto-reply rule (a
bot); notes; reassignment; CSAT, CES and NPS answered; a customer coming back on another
channel; Berlin's (25 Oct) and Los Angeles' (1 Nov) DST changes inside the history.

Sentiment: every customer text is chosen with an unambiguous sign and labelled here by hand
(POS / NEG / NEU). tests/reports/test_audit_history.py checks each label against plain
VADER (the vaderSentiment library called on the text, not the product's stored value or its
care-tuned scorer): the expected buckets come from these labels."""
from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc
ZONES = ("UTC", "America/Los_Angeles", "Europe/Berlin", "Asia/Kolkata")
RANGE = (dt.date(2026, 10, 22), dt.date(2026, 11, 4))  # every event is well inside it in every zone
SLA_FIRST_RESPONSE_MINUTES = 60
REPEAT_WINDOW = dt.timedelta(days=7)

POS, NEG, NEU = "positive", "negative", "neutral"


def at(month: int, day: int, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hh, mm, tzinfo=UTC)


@dataclass
class Ev:
    at: dt.datetime
    kind: str  # in, reply, reply_failed, retry, bot, note, assign, resolve, agent_reopen, spam, unspam, survey, answer
    case: str
    data: dict = field(default_factory=dict)


# --- the script ---------------------------------------------------------------------------
# (when, kind, case, data). Channels: x -> team LA, email -> team Berlin, mastodon -> team Kolkata
# (routing rules by channel account). "auto" marks the message the X auto-reply rule answers.
SCRIPT: list[Ev] = [
    # x1: auto-reply (bot), answered in 20 min, thanked, resolved from the resolve form with CSAT 5
    Ev(at(10, 23, 16, 0), "in", "x1", {"who": "amy", "channel": "x", "label": NEG, "auto": True,
                                        "text": "Where is my order status? This is terrible, awful service"}),
    Ev(at(10, 23, 16, 20), "reply", "x1", {"agent": "lina"}),
    Ev(at(10, 23, 16, 40), "in", "x1", {"who": "amy", "channel": "x", "label": POS,
                                         "text": "Thanks so much, that is great help, I love it"}),
    Ev(at(10, 23, 17, 0), "resolve", "x1", {"agent": "lina", "survey": "csat"}),
    Ev(at(10, 23, 17, 30), "answer", "x1", {"kind": "csat", "score": 5}),

    # e1: Berlin email, resolved, then the AGENT reopens 35 minutes later with no customer message
    Ev(at(10, 23, 9, 0), "in", "e1", {"who": "carl", "channel": "email", "label": NEU,
                                       "text": "Send the invoice for order 5521 to this address."}),
    Ev(at(10, 23, 9, 30), "reply", "e1", {"agent": "bea"}),
    Ev(at(10, 23, 10, 0), "resolve", "e1", {"agent": "bea"}),
    Ev(at(10, 23, 10, 35), "agent_reopen", "e1", {"agent": "bea"}),
    Ev(at(10, 23, 10, 40), "note", "e1", {"agent": "bea"}),
    Ev(at(10, 23, 11, 0), "resolve", "e1", {"agent": "bea"}),

    # x2: a note, reassignment, a reply the network refuses (403), retried; the customer comes
    # back two days later (a reopen and a repeat contact), breached by the monitor, NPS answered next day
    Ev(at(10, 24, 15, 0), "in", "x2", {"who": "bob", "channel": "x", "label": NEG,
                                        "text": "Your app is broken and support is useless, I hate this"}),
    Ev(at(10, 24, 15, 10), "note", "x2", {"agent": "leo"}),
    Ev(at(10, 24, 15, 15), "assign", "x2", {"agent": "leo"}),
    Ev(at(10, 24, 15, 20), "reply_failed", "x2", {"agent": "leo"}),
    Ev(at(10, 24, 15, 35), "retry", "x2", {"agent": "leo"}),
    Ev(at(10, 24, 16, 0), "resolve", "x2", {"agent": "leo"}),
    Ev(at(10, 26, 15, 0), "in", "x2", {"who": "bob", "channel": "x", "label": NEG,
                                        "text": "It is broken again, this is terrible and I am angry"}),
    Ev(at(10, 26, 16, 30), "assign", "x2", {"agent": "lina"}),
    Ev(at(10, 26, 17, 0), "reply", "x2", {"agent": "lina"}),
    Ev(at(10, 26, 17, 30), "resolve", "x2", {"agent": "lina"}),
    Ev(at(10, 26, 17, 31), "survey", "x2", {"kind": "nps", "agent": "lina"}),
    Ev(at(10, 27, 10, 0), "answer", "x2", {"kind": "nps", "score": 3}),

    # e2: across Berlin's DST change (01:00 UTC, 25 Oct): 02:30 CEST in, 02:40 CET reply (breached), CES 6
    Ev(at(10, 25, 0, 30), "in", "e2", {"who": "dora", "channel": "email", "label": NEG,
                                        "text": "The delivery was damaged and the box is broken, very bad"}),
    Ev(at(10, 25, 1, 40), "reply", "e2", {"agent": "bert"}),
    Ev(at(10, 25, 2, 0), "resolve", "e2", {"agent": "bert"}),
    Ev(at(10, 25, 2, 1), "survey", "e2", {"kind": "ces", "agent": "bert"}),
    Ev(at(10, 25, 3, 0), "answer", "e2", {"kind": "ces", "score": 6}),

    # m1: Kolkata Mastodon at 00:10 IST (18:40 UTC): the first half hour of a local day; CSAT 1
    Ev(at(10, 27, 18, 40), "in", "m1", {"who": "dan", "channel": "mastodon", "label": NEG,
                                         "text": "Terrible experience, I want a refund or I cancel, awful"}),
    Ev(at(10, 27, 19, 0), "reply", "m1", {"agent": "kavi"}),
    Ev(at(10, 27, 19, 30), "resolve", "m1", {"agent": "kavi"}),
    Ev(at(10, 27, 19, 31), "survey", "m1", {"kind": "csat", "agent": "kavi"}),
    Ev(at(10, 27, 20, 0), "answer", "m1", {"kind": "csat", "score": 1}),
    # dan comes back two days later on X (another channel, the same customer): a repeat contact of m1
    Ev(at(10, 29, 16, 0), "in", "x3", {"who": "dan", "channel": "x", "label": POS,
                                        "text": "Thanks, the refund arrived, great and wonderful support"}),
    Ev(at(10, 29, 16, 10), "reply", "x3", {"agent": "lina"}),
    Ev(at(10, 29, 16, 30), "resolve", "x3", {"agent": "lina"}),

    # s1: spam marked EARLY (before the reports task read it, before its due time)
    Ev(at(10, 28, 12, 0), "in", "s1", {"who": "spammy", "channel": "mastodon", "label": POS, "tick": False,
                                        "text": "Win free followers now, amazing great prize, love it"}),
    Ev(at(10, 28, 12, 1), "spam", "s1", {"agent": "kiran"}),
    # s2: spam marked LATE (after the task read it and after the monitor breached it)
    Ev(at(10, 29, 10, 0), "in", "s2", {"who": "bulk", "channel": "email", "label": NEG,
                                        "text": "Urgent problem with your account, terrible risk, act now or lose"}),
    Ev(at(10, 29, 11, 30), "spam", "s2", {"agent": "bert"}),
    # s3: marked spam by mistake and unmarked: it counts in full
    Ev(at(10, 30, 9, 0), "in", "s3", {"who": "frank", "channel": "email", "label": NEU,
                                       "text": "Change the delivery address for order 7731 to Main Street 4."}),
    Ev(at(10, 30, 9, 10), "spam", "s3", {"agent": "bea"}),
    Ev(at(10, 30, 9, 40), "unspam", "s3", {"agent": "bea"}),
    Ev(at(10, 30, 9, 50), "reply", "s3", {"agent": "bea"}),
    Ev(at(10, 30, 10, 30), "resolve", "s3", {"agent": "bea"}),

    # x4: across Los Angeles' DST change (09:00 UTC, 1 Nov: 02:00 PDT -> 01:00 PST)
    Ev(at(11, 1, 8, 30), "in", "x4", {"who": "eve", "channel": "x", "label": NEG,
                                       "text": "My package is lost and nobody helps, this is bad and sad"}),
    Ev(at(11, 1, 9, 15), "reply", "x4", {"agent": "leo"}),
    Ev(at(11, 1, 10, 0), "resolve", "x4", {"agent": "leo"}),
    # x5: 07:30 UTC on 2 Nov is still 1 Nov in Los Angeles (PST), would be 2 Nov with the PDT offset
    Ev(at(11, 2, 7, 30), "in", "x5", {"who": "gus", "channel": "x", "label": POS,
                                       "text": "Love the new design, great job, really happy with it"}),
    Ev(at(11, 2, 7, 50), "reply", "x5", {"agent": "lina"}),
    Ev(at(11, 2, 8, 20), "resolve", "x5", {"agent": "lina"}),

    # m2: never answered: breached by the monitor, open at the end (backlog)
    Ev(at(11, 3, 11, 0), "in", "m2", {"who": "gina", "channel": "mastodon", "label": NEG,
                                       "text": "Still no answer, this is awful and I am very disappointed"}),
]
SCRIPT.sort(key=lambda e: e.at)
END = at(11, 3, 23, 0)  # the last monitor run and reports task


def monitor_times(script=SCRIPT) -> list[dt.datetime]:
    """When the SLA monitor runs: one minute after each cycle's first-response due time (the
    breach is then at a known moment), and at the end."""
    return sorted({e.at + dt.timedelta(minutes=SLA_FIRST_RESPONSE_MINUTES + 1) for e in script if e.kind == "in"}
                  | {END})


# --- the expected figures, in plain Python -------------------------------------------------

def median(values):
    return statistics.median(values) if values else None


def local_day(moment: dt.datetime, zone: str, *, whole_hours: bool = False) -> dt.date:
    if whole_hours:  # today's reading of a half-hour zone: each UTC hour in the local day it starts in
        moment = moment.replace(minute=0, second=0, microsecond=0)
    return moment.astimezone(ZoneInfo(zone)).date()


def days(zone: str) -> list[dt.date]:
    lo, hi = RANGE
    return [lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1)]


@dataclass
class Fact:
    """One dated figure: what happened, when, where (channel, team, agent), its value."""
    metric: str
    at: dt.datetime
    case: str
    channel: str
    agent: str | None = None
    value: float | None = None


def facts(script=SCRIPT, *, known_bugs: frozenset = frozenset()) -> list[Fact]:
    """Every figure the script implies, by the issue's definitions (docs/reports.md).

    `known_bugs` reproduces what today's product does on a case the issue lists as wrong,
    so the suite's other assertions hold today; each bug also has a strict-xfail test
    asserting the correct figure (test_audit_history.py):
      - "agent_reopen_repeat": an agent's reopen counted as a repeat contact (issue 22, 1);
      - "late_spam": a conversation marked spam after the reports task read its message and
        after its breach keeps its inbound volume, sentiment, "opened" and breach (issue 22, 2)."""
    spam_final = {}
    for e in script:
        if e.kind in ("spam", "unspam"):
            spam_final[e.case] = e.kind == "spam"
    out: list[Fact] = []
    cycles: dict[str, dict] = {}
    channel_of: dict[str, str] = {}
    customer_of: dict[str, str] = {}
    resolutions: list[dict] = []  # {customer, at, case, repeat}
    sent_surveys: dict[tuple, dt.datetime] = {}
    monitor = monitor_times(script)
    spam_marked_at = {e.case: e.at for e in script if e.kind == "spam"}

    def emit(metric, when, case, agent=None, value=None):
        out.append(Fact(metric, when, case, channel_of[case], agent, value))

    def counts(case, when=None):
        """Does this case count at all? Spam at the end: no (order independent)."""
        if not spam_final.get(case):
            return True
        if "late_spam" in known_bugs and when is not None:
            # today: what the reports task read before the mark stays
            marked = spam_marked_at[case]
            read_by_task = any(e.case == case and e.kind == "in" and e.data.get("tick", True) for e in script)
            return read_by_task and when < marked
        return False

    def start_cycle(case, when, kind, by_customer):
        cycles[case] = {"start": when, "first": None, "resolved": False, "sla": None}
        if not spam_final.get(case):  # a spam cycle is not started (today: "opened" then "dismissed", net 0)
            emit(kind, when, case)
        if by_customer or "agent_reopen_repeat" in known_bugs:
            who = customer_of[case]
            for r in reversed(resolutions):
                if r["customer"] == who and when - REPEAT_WINDOW <= r["at"] <= when:
                    if not r["repeat"]:
                        r["repeat"] = True
                        emit("repeat_contact", r["at"], r["case"])
                    break

    timeline = sorted([(e.at, 0, e) for e in script] + [(m, 1, None) for m in monitor], key=lambda x: (x[0], x[1]))
    for when, _, e in timeline:
        if e is None:  # the SLA monitor: first-response targets past due without a reply
            for case, c in cycles.items():
                due = c["start"] + dt.timedelta(minutes=SLA_FIRST_RESPONSE_MINUTES)
                if (c.get("sla_target") and c["sla"] is None and c["first"] is None and not c["resolved"]
                        and due <= when):
                    c["sla"] = "breached"
                    if counts(case, when):
                        emit("sla_breached", when, case)
            continue
        case = e.case
        if e.kind == "in":
            channel_of.setdefault(case, e.data["channel"])
            customer_of.setdefault(case, e.data["who"])
            if counts(case, when):
                emit("msg_in", when, case)
                emit(f"msg_in_{e.data['label']}", when, case)
            c = cycles.get(case)
            if c is None:
                start_cycle(case, when, "opened", True)
                cycles[case]["sla_target"] = True
            elif c["resolved"]:
                start_cycle(case, when, "reopened", True)
                cycles[case]["sla_target"] = True
            if e.data.get("auto"):
                emit("msg_out_bot", when, case)
        elif e.kind in ("reply", "retry"):
            c = cycles[case]
            emit("msg_out", when, case, e.data["agent"])
            if c["first"] is None:
                c["first"] = when
                emit("first_response", when, case, e.data["agent"], (when - c["start"]).total_seconds())
                if c.get("sla_target") and c["sla"] is None:
                    c["sla"] = "met"
                    emit("sla_met", when, case, e.data["agent"])
        elif e.kind == "resolve":
            c = cycles[case]
            c["resolved"] = True
            emit("resolved", when, case, e.data["agent"], (when - c["start"]).total_seconds())
            resolutions.append({"customer": customer_of[case], "at": when, "case": case, "repeat": False})
            if e.data.get("survey"):
                sent_surveys[(case, e.data["survey"])] = when
                emit(f"{e.data['survey']}_sent", when, case)
                emit("msg_out_bot", when, case)
        elif e.kind == "agent_reopen":
            start_cycle(case, when, "reopened", False)
        elif e.kind == "survey":
            sent_surveys[(case, e.data["kind"])] = when
            emit(f"{e.data['kind']}_sent", when, case)
            emit("msg_out_bot", when, case)
        elif e.kind == "answer":
            kind = e.data["kind"]
            emit(kind, when, case, value=e.data["score"])  # the score at answer time
            emit(f"{kind}_answered", sent_surveys[(case, kind)], case)  # the response rate at send time
    # a spam conversation leaves no trace (beyond what the known bug keeps)
    return [f for f in out if counts(f.case, f.at) or f.metric in ("msg_out", "msg_out_bot")]


TEAM_OF_CHANNEL = {"x": "Care LA", "email": "Care Berlin", "mastodon": "Care Kolkata"}
CHANNEL_PROVIDER = {"x": "twitter", "email": "email", "mastodon": "mastodon"}


def service_row(fs: list[Fact]) -> dict:
    def n(m):
        return sum(1 for f in fs if f.metric == m)

    def vals(m):
        return sorted(f.value for f in fs if f.metric == m)

    return {
        "volume_in": n("msg_in"), "volume_out": n("msg_out"), "volume_out_bot": n("msg_out_bot"),
        "opened": n("opened"), "reopened": n("reopened"), "resolved": n("resolved"),
        "first_response": {"count": len(vals("first_response")), "median": median(vals("first_response"))},
        "resolution": {"count": len(vals("resolved")), "median": median(vals("resolved"))},
        "sla_met": n("sla_met"), "sla_breached": n("sla_breached"),
    }


def sentiment_counts(fs: list[Fact]) -> dict:
    n = lambda m: sum(1 for f in fs if f.metric == m)  # noqa: E731
    return {"messages": n("msg_in"), "positive": n("msg_in_positive"), "negative": n("msg_in_negative"),
            "neutral": n("msg_in_neutral")}


def experience_row(fs: list[Fact]) -> dict:
    n = lambda m: sum(1 for f in fs if f.metric == m)  # noqa: E731
    scores = lambda m: [f.value for f in fs if f.metric == m]  # noqa: E731
    csat, ces, nps = scores("csat"), scores("ces"), scores("nps")
    return {
        "csat_answers": len(csat), "csat_sent": n("csat_sent"),
        "csat": (100.0 * sum(1 for s in csat if s >= 4) / len(csat)) if csat else None,
        "csat_response_rate": (n("csat_answered") / n("csat_sent")) if n("csat_sent") else None,
        "ces_answers": len(ces), "ces_mean": (sum(ces) / len(ces)) if ces else None,
        "nps_answers": len(nps),
        "nps": (100.0 * (sum(s >= 9 for s in nps) - sum(s <= 6 for s in nps)) / len(nps)) if nps else None,
        "resolved": n("resolved"), "repeat_contacts": n("repeat_contact"),
        **sentiment_counts(fs),
    }


def by_day(fs: list[Fact], zone: str, row, *, whole_hours: bool = False) -> dict[str, dict]:
    out = {}
    for d in days(zone):
        out[d.isoformat()] = row([f for f in fs if local_day(f.at, zone, whole_hours=whole_hours) == d])
    return out


def backlog(fs: list[Fact], zone: str, *, whole_hours: bool = False) -> list[int]:
    signs = {"opened": 1, "reopened": 1, "resolved": -1}
    out, running = [], 0
    for d in days(zone):
        running += sum(signs.get(f.metric, 0) for f in fs if local_day(f.at, zone, whole_hours=whole_hours) == d)
        out.append(running)
    return out


def gap(script=SCRIPT) -> dict:
    """Per conversation resolved (last resolution in the range): service met (a target met and
    none breached) and experience bad (last customer message negative or CSAT <= 2) / good."""
    fs = facts(script)
    out = {}
    for case in {f.case for f in fs if f.metric == "resolved"}:
        mine = [f for f in fs if f.case == case]
        met = any(f.metric == "sla_met" for f in mine) and not any(f.metric == "sla_breached" for f in mine)
        last = [e for e in script if e.case == case and e.kind == "in"][-1].data["label"]
        csat = [f.value for f in mine if f.metric == "csat"]
        bad = last == NEG or bool(csat and csat[-1] <= 2)
        good = not bad and (last == POS or bool(csat and csat[-1] >= 4))
        out[case] = {"channel": mine[0].channel, "met_but_bad": met and bad, "missed_but_good": (not met) and good}
    return out
