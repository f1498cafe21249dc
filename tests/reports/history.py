"""A scripted history driven through the real services (ingest, reply, send,
status, notes, surveys) on a controlled clock, plus an independent, deliberately
naive calculation of what the reports must say about it."""
from __future__ import annotations

import datetime as dt
import itertools
from contextlib import contextmanager
from unittest import mock

from apps.connectors.providers.base import InboundMention
from apps.inbox import sending as inbox_sending
from apps.inbox import services as inbox
from apps.inbox.events import event_record
from apps.inbox.models import Conversation, Message
from apps.ingest.services import mentions_ingest
from apps.reports import handle_time, inbound, rollups, surveys
from apps.routing.models import UnroutedMessage

UTC = dt.timezone.utc
_ids = itertools.count(900000)


def at(day: int, hh: int, mm: int = 0) -> dt.datetime:
    """November 2026: the 2nd is a Monday."""
    return dt.datetime(2026, 11, day, hh, mm, tzinfo=UTC)


@contextmanager
def clock(moment: dt.datetime):
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


class History:
    """Runs actions and records the script the naive calculation reads."""

    def __init__(self, *, queue, accounts):
        self.queue = queue
        self.accounts = accounts
        self.script: list[tuple] = []
        self.conversations: dict[str, Conversation] = {}
        self.messages: dict[str, Message] = {}

    def customer_says(self, name: str, when: dt.datetime, text: str, *, who: str, account: str = "twitter"):
        ext = str(next(_ids))
        mention = InboundMention(external_id=ext, text=text, created_at=when, author_external_id=f"cust-{who}",
                                 author_handle=who, author_name=who.title(), thread_id=f"thread-{name}")
        with clock(when):
            mentions_ingest(account=self.accounts[account], mentions=[mention])
        message = Message.objects.get(channel_account=self.accounts[account], external_id=ext)
        self.conversations[name] = message.conversation
        # What routing does for reports: a queue, and the message no longer waits for routing
        # (ingest stored its language and sentiment).
        with clock(when + dt.timedelta(seconds=5)):
            Conversation.objects.filter(pk=message.conversation_id, queue__isnull=True).update(queue=self.queue)
            UnroutedMessage.objects.filter(message=message).delete()
        self.script.append((when, name, "in", message.sentiment))
        return message

    def agent_replies(self, name: str, when: dt.datetime, agent, text: str = "We are on it, sorry!", *,
                      bot: bool = False, private: bool = False, send_delay: dt.timedelta = dt.timedelta(0)):
        conversation = Conversation.objects.get(pk=self.conversations[name].pk)
        with clock(when):
            message = inbox.reply_create(conversation=conversation, agent=agent, text=text, is_bot=bot,
                                         private=private)
        sent = when + send_delay
        with clock(sent):
            inbox_sending.message_mark_sent(message_id=message.pk, external_id=str(next(_ids)))
        self.script.append((sent, name, "bot" if bot else "human", agent.pk if agent else 0))
        return message

    def note(self, name: str, when: dt.datetime, agent):
        with clock(when):
            inbox.note_create(conversation=self.conversations[name], author=agent, text="internal: check order")
        self.script.append((when, name, "note", agent.pk))

    def status(self, name: str, when: dt.datetime, status: str, actor=None):
        with clock(when):
            inbox.conversation_status_set(conversation=self.conversations[name], status=status, actor=actor)
        self.script.append((when, name, status, None))

    def sla_due(self, name: str, *, first_response: dt.datetime | None = None, resolution: dt.datetime | None = None):
        Conversation.objects.filter(pk=self.conversations[name].pk).update(
            first_response_due_at=first_response, resolution_due_at=resolution)
        self.script.append((None, name, "sla_due", {"first_response": first_response, "resolution": resolution}))

    def sla_breach_event(self, name: str, when: dt.datetime, target: str):
        with clock(when):
            event_record(conversation=Conversation.objects.get(pk=self.conversations[name].pk),
                         kind="sla_breached", target=target)
        self.script.append((when, name, "sla_breached", target))

    def survey(self, name: str, when: dt.datetime, agent, score: int | None, answered: dt.datetime | None = None,
               kind: str = "csat"):
        with clock(when):
            survey = surveys.survey_send(conversation=Conversation.objects.get(pk=self.conversations[name].pk),
                                         actor=agent, kind=kind)
            inbox_sending.message_mark_sent(message_id=survey.message_id, external_id=str(next(_ids)))
        self.script.append((when, name, "bot", 0))
        if score is not None:
            with clock(answered):
                surveys.survey_answer(survey=survey, score=score)
        self.script.append((when, name, f"{kind}_survey", score))
        return survey

    def works(self, name: str, agent, signals: list[tuple[dt.datetime, str]]):
        """An agent on the thread: what the inbox socket reports ("open", "active", "leave")."""
        for when, kind in signals:
            with clock(when):
                handle_time.work_session_signal(conversation_id=self.conversations[name].pk, agent_id=agent.pk,
                                            kind=kind, at=when)
            self.script.append((when, name, "work", (agent.pk, kind)))

    def roll_up(self, when: dt.datetime):
        """What the reports task does on its schedule."""
        with clock(when):
            inbound.inbound_messages_record()
            handle_time.work_sessions_close_idle()
            rollups.rollups_apply()


def naive(script: list[tuple], *, lo: dt.datetime, hi: dt.datetime) -> dict:
    """The metric definitions, computed the obvious way from the script alone.

    A cycle starts with a conversation's first customer message or the first one
    after a resolution; the first human reply ends the wait for the first
    response; each human reply answers from the first customer message since the
    previous human reply in the cycle; one resolution per cycle."""
    cycles: dict[str, dict] = {}
    out = {"handle": handle_naive(script, lo=lo, hi=hi), "first_response": [], "reply": [], "resolution": [], "opened": 0, "reopened": 0, "in": 0,
           "out_human": 0, "out_bot": 0, "sla_met": 0, "sla_breached": 0, "repeat": 0, "csat": []}
    last_resolution: dict[str, dt.datetime] = {}
    within = lambda t: t is not None and lo <= t < hi  # noqa: E731
    for when, name, action, arg in script:
        cycle = cycles.get(name)
        if action == "in":
            out["in"] += within(when)
            if cycle is None or cycle["resolved"]:
                reopen = cycle is not None
                if reopen and name in last_resolution and when - last_resolution[name] <= dt.timedelta(days=7):
                    out["repeat"] += within(last_resolution[name])
                cycles[name] = {"start": when, "first": None, "waiting": when, "resolved": False, "sla": set(),
                                "due": {}}
                out["reopened" if reopen else "opened"] += within(when)
            elif cycle["waiting"] is None:
                cycle["waiting"] = when
        elif action == "human":
            out["out_human"] += within(when)
            if cycle["first"] is None:
                cycle["first"] = when
                if within(when):
                    out["first_response"].append((when - cycle["start"]).total_seconds())
                target = cycle["due"].get("first_response")  # targets belong to the cycle they were set in
                if target and "first_response" not in cycle["sla"]:
                    cycle["sla"].add("first_response")
                    out["sla_met" if when <= target else "sla_breached"] += within(when)
            if cycle["waiting"] is not None:
                if within(when):
                    out["reply"].append((when - cycle["waiting"]).total_seconds())
                cycle["waiting"] = None
        elif action == "bot":
            out["out_bot"] += within(when)
        elif action in ("resolved", "closed") and not cycle["resolved"]:
            cycle["resolved"] = True
            last_resolution[name] = when
            if within(when):
                out["resolution"].append((when - cycle["start"]).total_seconds())
        elif action == "sla_due":
            cycle["due"] = arg
        elif action == "sla_breached" and arg not in cycle["sla"]:
            cycle["sla"].add(arg)
            out["sla_breached"] += within(when)
        elif action == "csat_survey" and arg is not None:
            out["csat"].append(arg)
    return out


def handle_naive(script: list[tuple], *, lo: dt.datetime, hi: dt.datetime, idle=dt.timedelta(minutes=5)) -> list:
    """Handle time per work session, the obvious way: walk each agent's signals
    on each conversation in time order; a step counts when it is at most `idle`
    long and the agent had not left; a longer step ends the session (at the
    last signal) and starts another. A session counts when it ends."""
    signals: dict[tuple, list] = {}
    for when, name, action, arg in script:
        if action == "work":
            signals.setdefault((name, arg[0]), []).append((when, arg[1]))
    out = []
    for steps in signals.values():
        steps.sort(key=lambda s: s[0])
        sessions, current, prev, left = [], None, None, False
        for when, kind in steps:
            if current is not None and when - prev > idle:
                sessions.append((prev, current))
                current = None
            if current is None:
                if kind != "leave":
                    current, prev, left = 0.0, when, False
                continue
            if not left:
                current += (when - prev).total_seconds()
            prev, left = when, kind == "leave"
        if current is not None:
            sessions.append((prev, current))
        out += [seconds for end, seconds in sessions if seconds > 0 and lo <= end < hi]
    return out
