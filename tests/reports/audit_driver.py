"""Plays tests/reports/audit_history.py's script through the product's real services on a
simulated clock, against the stand-in networks (X and Mastodon stand-in servers, a local SMTP
server for email). Nothing here decides an expected figure: audit_history.py does, from the
script alone."""
from __future__ import annotations

import datetime as dt
import email.policy
import socket
from contextlib import ExitStack, contextmanager
from unittest import mock

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from django.db import transaction
from django.test import TestCase
from django.test.utils import override_settings

from apps.connectors.providers.base import InboundMention
from apps.connectors.standins.mastodon import MastodonStandIn
from apps.connectors.standins.server import Fault
from apps.connectors.standins.twitter import TwitterStandIn
from apps.contacts.models import SocialIdentity
from apps.core.task_queue import task_named
from apps.inbox import sending
from apps.inbox import services as inbox
from apps.inbox.models import CannedResponse, Conversation, Message
from apps.ingest.services import mentions_ingest
from apps.reports import handle_time, inbound, rollups, surveys
from apps.reports.models import Survey
from apps.routing.models import BusinessHours, Holiday, RoutingRule, SlaPolicy
from apps.routing.sla import sla_breaches_check
from cxinbox.celery import app as celery_app
from tests.factories import ChannelAccountFactory, QueueFactory, TeamFactory, UserFactory

from . import audit_history as H

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


class Clock:
    def __init__(self):
        self.moment = H.at(10, 20, 0)

    def __call__(self):
        return self.moment


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def networks():
    """The X and Mastodon stand-ins and a local SMTP server, with the settings pointing at them."""
    box = Mailbox()
    smtp = Controller(box, hostname="127.0.0.1", port=_free_port(), auth_require_tls=False,
                      authenticator=lambda *args: AuthResult(success=True, handled=False))
    smtp.start()
    try:
        with TwitterStandIn() as twitter, MastodonStandIn() as mastodon, override_settings(
                TWITTER_API_BASE_URL=twitter.base_url, MASTODON_API_BASE_URL="https://unused.invalid",
                PROVIDER_TIMEOUT_SECONDS=2.0):
            yield twitter, mastodon, smtp.port, box
    finally:
        smtp.stop()


class AuditWorld:
    """The installation: three teams with calendars, queues, SLA policies, routing rules by
    channel account, an X auto-reply rule, agents, the three channel accounts."""

    def __init__(self, *, twitter, mastodon, smtp_port):
        self.twitter, self.mastodon = twitter, mastodon
        self.teams, self.queues, self.agents = {}, {}, {}
        calendars = {  # (team, zone, agents, schedule, holiday)
            "Care LA": ("America/Los_Angeles", ("lina", "leo"), [["08:00", "17:00"]], dt.date(2026, 10, 30)),
            "Care Berlin": ("Europe/Berlin", ("bert", "bea"), [["09:00", "12:30"], ["13:30", "18:00"]],
                            dt.date(2026, 10, 26)),
            "Care Kolkata": ("Asia/Kolkata", ("kavi", "kiran"), [["09:30", "18:30"]], dt.date(2026, 11, 2)),
        }
        for name, (zone, agents, hours, holiday) in calendars.items():
            team = TeamFactory(name=name, time_zone=zone)
            cal = BusinessHours.objects.create(team=team, time_zone=zone, schedule={d: hours for d in WEEKDAYS})
            Holiday.objects.create(business_hours=cal, date=holiday, name="closed")
            queue = QueueFactory(name=name.replace("Care ", "Queue "), team=team, is_default=name == "Care LA")
            SlaPolicy.objects.create(name=f"{name} first response", queue=queue,
                                     first_response_minutes=H.SLA_FIRST_RESPONSE_MINUTES)
            for username in agents:
                self.agents[username] = UserFactory(username=username, role="agent", time_zone=zone)
                team.members.add(self.agents[username])
            self.teams[name], self.queues[name] = team, queue
        self.admin = UserFactory(username="auditor", role="admin", is_superuser=True, is_staff=True)
        self.accounts = {
            "x": ChannelAccountFactory(provider="twitter", name="Acme on X", handle="@acme", external_user_id="783214"),
            "email": ChannelAccountFactory(
                provider="email", name="Acme Support", handle="support@acme.example", external_user_id="",
                credentials={"username": "support@acme.example", "password": "imap-pass", "imap_host": "127.0.0.1",
                             "imap_port": 1, "imap_ssl": False, "smtp_host": "127.0.0.1", "smtp_port": smtp_port,
                             "smtp_security": "none"}),
            "mastodon": ChannelAccountFactory(
                provider="mastodon", name="Acme on Mastodon", handle="@acme@mastodon.example",
                external_user_id=mastodon.brand["id"], api_base_url=mastodon.base_url,
                credentials={"access_token": "mastodon-token"}),
        }
        canned = CannedResponse.objects.create(shortcut="ack", title="Ack",
                                               text="Thanks! An agent will answer you soon.")
        RoutingRule.objects.create(name="X order status auto-reply", position=1, keywords=["order status"],
                                   channels=["twitter"], auto_reply=canned)
        for position, (channel, team) in enumerate(H.TEAM_OF_CHANNEL.items(), start=10):
            rule = RoutingRule.objects.create(name=f"{channel} to {team}", position=position,
                                              set_queue=self.queues[team])
            rule.channel_accounts.add(self.accounts[channel])
        self.conversations: dict[str, int] = {}
        self.last_external: dict[str, str] = {}
        self.identities: dict[tuple, str] = {}


class Player:
    def __init__(self, world: AuditWorld, clock: Clock):
        self.w, self.clock = world, clock
        self._ids = 0

    # -- the customer --------------------------------------------------------------------
    def _mention(self, e: H.Ev) -> InboundMention:
        channel, who, text = e.data["channel"], e.data["who"], e.data["text"]
        thread = self.w.last_external.get(e.case)
        if channel == "x":
            author_id = self.w.identities.setdefault(("x", who), str(7000 + len(self.w.identities)))
            self.w.twitter.add_user(author_id, who, who.title())
            tweet = self.w.twitter.add_mention(f"@acme {text}", author_id=author_id, in_reply_to=thread,
                                               created_at=e.at)
            return InboundMention(external_id=tweet["id"], text=tweet["text"], created_at=e.at,
                                  author_external_id=author_id, author_handle=who, author_name=who.title(),
                                  thread_id=tweet["conversation_id"], in_reply_to_external_id=thread)
        if channel == "mastodon":
            account = self.w.mastodon.add_account(who, who.title(), domain="mastodon.example")
            status = self.w.mastodon.add_status(text, author=account, in_reply_to=thread)
            return InboundMention(external_id=status["id"], text=f"@acme {text}", created_at=e.at,
                                  author_external_id=account["id"], author_handle=f"{who}@mastodon.example",
                                  author_name=who.title(), thread_id=f"m-{e.case}", in_reply_to_external_id=thread)
        self._ids += 1
        address = f"{who}@mail.example"
        return InboundMention(external_id=f"<audit-{self._ids}@mail.example>", text=text, created_at=e.at,
                              author_external_id=address, author_handle=address, author_name=who.title(),
                              thread_id=f"e-{e.case}", is_private=True, in_reply_to_external_id=thread,
                              raw={"from": address, "subject": "Order", "references": []})

    def step_in(self, e):
        channel = e.data["channel"]
        if (channel, e.data["who"]) not in self.w.identities and channel != "x":
            self.w.identities[(channel, e.data["who"])] = e.data["who"]
        mention = self._mention(e)
        self._cross_channel_link(e, mention)
        mentions_ingest(account=self.w.accounts[channel], mentions=[mention], route_now=True)
        message = Message.objects.get(channel_account=self.w.accounts[channel], external_id=mention.external_id)
        self.w.conversations[e.case] = message.conversation_id
        self.w.last_external[e.case] = mention.external_id

    def _cross_channel_link(self, e, mention):
        """The same person on another network: the identity an admin links to the customer
        they already are (the product has no merge service; the link is what makes them one
        customer), created before their first message on the new channel."""
        who, provider = e.data["who"], H.CHANNEL_PROVIDER[e.data["channel"]]
        known = SocialIdentity.objects.filter(handle__startswith=who).exclude(provider=provider).first()
        if known and not SocialIdentity.objects.filter(provider=provider, external_id=mention.author_external_id
                                                       ).exists():
            SocialIdentity.objects.create(customer_id=known.customer_id, provider=provider,
                                          external_id=mention.author_external_id, handle=mention.author_handle,
                                          display_name=mention.author_name)

    # -- the team ------------------------------------------------------------------------
    def conversation(self, e) -> Conversation:
        return Conversation.objects.get(pk=self.w.conversations[e.case])

    def agent(self, e):
        return self.w.agents[e.data["agent"]]

    def step_reply(self, e):
        conversation = self.conversation(e)
        inbox.reply_create(conversation=conversation, agent=self.agent(e), text="Sorry about this, fixed it for you.",
                           private=not conversation.is_public)

    def step_reply_failed(self, e):
        self.w.twitter.faults.append(Fault(method="POST", path_prefix="/2/tweets", status=403))
        conversation = self.conversation(e)
        message = inbox.reply_create(conversation=conversation, agent=self.agent(e),
                                     text="Checking your order now, one moment.", private=not conversation.is_public)
        self.w.failed_message = message.pk

    def step_retry(self, e):
        message = Message.objects.get(pk=self.w.failed_message)
        assert message.send_status == Message.SendStatus.FAILED, message.send_status  # the network refused it
        sending.message_retry(message=message, actor=self.agent(e))

    def step_note(self, e):
        inbox.note_create(conversation=self.conversation(e), author=self.agent(e), text="internal: checked the order")

    def step_assign(self, e):
        inbox.conversation_assign(conversation=self.conversation(e), assignee=self.agent(e), actor=self.w.admin,
                                  reason="handed over")

    def step_resolve(self, e):
        inbox.conversation_resolve(conversation=self.conversation(e), actor=self.agent(e),
                                   send_survey=e.data.get("survey") == "csat")

    def step_agent_reopen(self, e):
        inbox.conversation_status_set(conversation=self.conversation(e), status="open", actor=self.agent(e),
                                      reason="reopened by the agent")

    def step_spam(self, e):
        inbox.conversation_mark_spam(conversation=self.conversation(e), actor=self.agent(e), spam=True)

    def step_unspam(self, e):
        inbox.conversation_mark_spam(conversation=self.conversation(e), actor=self.agent(e), spam=False)

    def step_survey(self, e):
        surveys.survey_send(conversation=self.conversation(e), actor=self.agent(e), kind=e.data["kind"])

    def step_answer(self, e):
        survey = Survey.objects.get(conversation_id=self.w.conversations[e.case], kind=e.data["kind"])
        surveys.survey_answer(survey=survey, score=e.data["score"])

    # -- beat ----------------------------------------------------------------------------
    def monitor(self):
        sla_breaches_check(now=self.clock.moment)

    def reports_task(self):
        inbound.inbound_messages_record()
        handle_time.work_sessions_close_idle()
        rollups.rollups_apply()

    def play(self):
        timeline = [(e.at, 0, e) for e in H.SCRIPT]
        timeline += [(m, 1, "monitor") for m in H.monitor_times()]
        timeline += [(e.at + dt.timedelta(minutes=1, seconds=30), 2, "task") for e in H.SCRIPT
                     if e.data.get("tick", True)]
        for when, _, what in sorted(timeline, key=lambda x: (x[0], x[1])):
            self.clock.moment = when
            with TestCase.captureOnCommitCallbacks(execute=True):
                if what == "monitor":
                    self.monitor()
                elif what == "task":
                    self.reports_task()
                else:
                    getattr(self, f"step_{what.kind}")(what)
        self.clock.moment = H.END + dt.timedelta(minutes=5)
        with TestCase.captureOnCommitCallbacks(execute=True):
            self.reports_task()


@contextmanager
def history_played():
    """The world built and the script played inside the caller's transaction, tasks run in
    process (Celery eager), the report task's own schedule replaced by the script's."""
    clock = Clock()
    with ExitStack() as stack:
        twitter, mastodon, smtp_port, box = stack.enter_context(networks())
        stack.enter_context(override_settings(
            REPORTS_METRICS_STRICT=True, DEMO_NETWORK_FAILURE_RATE=0.0,
            CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}))
        stack.enter_context(mock.patch("django.utils.timezone.now", clock))
        stack.enter_context(mock.patch.object(task_named("reports.apply_rollups"), "apply_async"))
        eager = celery_app.conf.task_always_eager
        celery_app.conf.task_always_eager = True
        stack.callback(setattr, celery_app.conf, "task_always_eager", eager)
        assert transaction.get_connection().in_atomic_block
        world = AuditWorld(twitter=twitter, mastodon=mastodon, smtp_port=smtp_port)
        world.mailbox = box
        Player(world, clock).play()
        yield world, clock
