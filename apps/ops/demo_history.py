"""The demo's 30 days of history: a care team at work on three channels, played through the
product's own services on a simulated clock, so every report, chart and the supervisor
dashboard have real shapes on a new installation's first run.

Each case (one customer contacting us about one thing) is planned up front from a seeded
random generator: when the customer writes, how long the team takes, the back and forth,
notes, hand-overs, the resolve and its survey, the customer coming back days later (a
reopen). The cases' steps are then played in time order with `django.utils.timezone.now`
set to each step's moment (what the report tests do, tests/reports/history.py), through
ingest (mentions_ingest, routed in place: rules, priority, SLA due times, assignment),
the inbox's services (reply, send, assign, status, notes, retry) and the surveys; the
tasks they queue run in process (Celery eager), as a worker would run them. Every half
hour of simulated time the SLA monitor and the idle work-session sweep run as beat would
run them. Steps due after the real now are left for the team: open work in the inbox.

A few replies are refused by the demo network (a 429 or a 500 on every try, until the
send task gives up): most are tried again by their agent minutes later and go out; the
ones of the last day and a half are left failed, with "Try again" in their thread."""
from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
import logging
import math
import random
import unicodedata
from contextlib import contextmanager
from unittest import mock

from celery.exceptions import Retry
from django.db import connection
from django.test.utils import override_settings
from django.utils import timezone

from apps.accounts.models import Role, User
from apps.connectors.models import ChannelAccount
from apps.connectors.providers import demo_texts
from apps.connectors.providers.base import InboundMention
from apps.connectors.providers.demo import language_hint, order_number
from apps.contacts.models import Customer
from apps.core.task_queue import task_named
from apps.inbox import sending
from apps.inbox import services as inbox
from apps.inbox.models import Conversation, Message, Status
from apps.inbox.signals import agent_work_signalled
from apps.ingest.services import mentions_ingest
from apps.reports import handle_time, surveys
from apps.reports.models import Survey
from apps.routing.sla import sla_breaches_check
from cxinbox.celery import app as celery_app

log = logging.getLogger(__name__)

SEED = 2026
DAYS = 30
CUSTOMERS = 400
WORKED_PER_DAY = 3.5  # conversations the team works, a weekday; the other customers only post
EXTERNAL_ID_PREFIX = "hist-"  # the history's messages: how a second run knows it is there
# beat's SLA monitor and idle-session sweep, played every TICK of simulated time
TICK = dt.timedelta(hours=2)
# customer messages arriving within this of each other are fetched in one poll (one ingest batch)
POLL_WINDOW = dt.timedelta(minutes=20)
# the share of cases per channel account (by provider)
CHANNEL_WEIGHTS = {"demo": 50, "email": 25, "mastodon": 25}
# customers write mostly in the day (UTC hours)
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 3, 6, 9, 11, 11, 10, 9, 10, 11, 11, 10, 9, 8, 8, 7, 5, 3, 2]


@dataclasses.dataclass
class Step:
    at: dt.datetime
    kind: str  # in, reply, note, assign, pending, resolve, answer, retry
    args: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Case:
    number: int
    persona: dict
    account: ChannelAccount
    topic: str
    steps: list[Step]
    conversation_id: int | None = None
    thread_id: str = ""
    replies: int = 0


@dataclasses.dataclass
class HistoryResult:
    cases: int = 0
    inbound: int = 0
    replies: int = 0
    failed: int = 0
    resolved: int = 0
    surveys_answered: int = 0


class SimulatedClock:
    """`timezone.now()` for the whole build: the moment the step being played happens."""

    def __init__(self, start: dt.datetime):
        self.moment = start

    def __call__(self) -> dt.datetime:
        return self.moment


@contextmanager
def _played_in_process(clock: SimulatedClock):
    """The clock patched in, Celery's tasks run in process, and commits that do not wait
    for the disk (the build is re-run from scratch if the machine dies meanwhile)."""
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA synchronous=OFF")
        elif connection.vendor == "postgresql":
            cursor.execute("SET synchronous_commit TO off")
    logging.disable(logging.INFO)  # a line per message and task: thousands, and slow to write
    try:
        # The report rollups are rebuilt once at the end (reports_rebuild), not after every change.
        with mock.patch("django.utils.timezone.now", clock), override_settings(DEMO_NETWORK_FAILURE_RATE=0.0), \
                mock.patch.object(task_named("reports.apply_rollups"), "apply_async"):
            yield
    finally:
        logging.disable(logging.NOTSET)
        celery_app.conf.task_always_eager = eager
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute("PRAGMA synchronous=FULL")
            elif connection.vendor == "postgresql":
                cursor.execute("SET synchronous_commit TO DEFAULT")


def history_exists() -> bool:
    return Message.objects.filter(external_id__startswith=EXTERNAL_ID_PREFIX).exists()


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _personas(rng: random.Random, count: int) -> list[dict]:
    people, seen = [], set()
    while len(people) < count:
        first, last = rng.choice(demo_texts.FIRST_NAMES), rng.choice(demo_texts.LAST_NAMES)
        base = f"{_ascii(first)}.{_ascii(last)}"
        handle = base if base not in seen else f"{base}{len(people)}"
        seen.add(handle)
        channel = rng.choices(list(CHANNEL_WEIGHTS), weights=list(CHANNEL_WEIGHTS.values()))[0]
        followers = int(math.exp(rng.gauss(5.5, 1.8))) if channel != "email" else 0
        people.append({"handle": handle, "name": f"{first} {last}", "channel": channel,
                       "followers": min(followers, 900_000)})
    return people


def _handle_on(persona: dict, provider: str) -> str:
    if provider == "email":
        return f"{persona['handle']}@example.net"
    if provider == "mastodon":
        return f"{persona['handle'].replace('.', '_')}@social.example"
    return persona["handle"].replace(".", "_")


class HistoryBuilder:
    def __init__(self, *, accounts: dict[str, ChannelAccount], supervisor: User, now: dt.datetime,
                 days: int = DAYS, customers: int = CUSTOMERS, seed: int = SEED):
        self.rng = random.Random(seed)
        self.seed = seed
        self.accounts = accounts
        self.supervisor = supervisor
        self.now = now
        self.start = (now - dt.timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
        self.days = days
        self.customers = customers
        self.result = HistoryResult()
        self.cases: list[Case] = []
        self._ids = 0
        self.agents_by_team: dict[int, list[User]] = {}
        for user in User.objects.filter(role=Role.AGENT, is_active=True).prefetch_related("teams").order_by("pk"):
            for team in user.teams.all():
                self.agents_by_team.setdefault(team.pk, []).append(user)
        self.all_agents = [u for agents in self.agents_by_team.values() for u in agents]

    # --- planning ---------------------------------------------------------------------
    def plan(self) -> None:
        """Worked cases (a few a day, more in the last two days and on an outage morning), and
        the rest of the customers posting once about the brand (no answer needed)."""
        rng = self.rng
        personas = _personas(rng, self.customers)
        starts = []
        for day in range(self.days + 1):
            date = self.start + dt.timedelta(days=day)
            per_day = WORKED_PER_DAY * (0.7 if date.weekday() >= 5 else 1.0) * (2 if day >= self.days - 2 else 1)
            for _ in range(max(1, round(rng.gauss(per_day, 1)))):
                hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
                starts.append((date.replace(hour=hour) + dt.timedelta(minutes=rng.uniform(0, 60)), None))
            if day == self.days - 8:  # an outage morning: a spike of the same complaint
                for _ in range(8):
                    starts.append((date.replace(hour=9) + dt.timedelta(minutes=rng.uniform(0, 150)), "outage"))
        starts = sorted(s for s in starts if s[0] < self.now)
        regulars = personas[:max(1, len(starts) * 2 // 3)]
        for number, (start, topic) in enumerate(starts):
            # most worked cases are a customer's only one; a third are regulars writing again
            persona = personas[number] if number < len(regulars) else rng.choice(regulars)
            self.cases.append(self._case_plan(number, persona, start, topic))
        for persona in personas[len(regulars):]:
            at = self.start + dt.timedelta(days=rng.uniform(0, self.days))
            at = at.replace(hour=rng.choices(range(24), weights=HOUR_WEIGHTS)[0])
            if at < self.now:
                text = rng.choice(demo_texts.CHATTER).format(tag=rng.choice(demo_texts.CHATTER_TAGS))
                self.cases.append(Case(len(self.cases), persona, self.accounts[persona["channel"]], "chatter",
                                       [Step(at, "in", {"text": text})]))

    def _agent_delay(self, at: dt.datetime, *, first: bool) -> dt.timedelta:
        rng = self.rng
        minutes = math.exp(rng.gauss(math.log(22 if first else 15), 0.8))
        if rng.random() < 0.08:
            minutes *= rng.uniform(4, 10)  # a busy hour: the SLA target is missed
        reply_at = at + dt.timedelta(minutes=minutes)
        if reply_at.hour < 7 or reply_at.hour >= 22:  # nobody on shift at night: the morning shift answers
            morning = reply_at.replace(hour=7, minute=0) + dt.timedelta(days=1 if reply_at.hour >= 22 else 0)
            reply_at = morning + dt.timedelta(minutes=rng.uniform(5, 90))
        return reply_at - at

    def _case_plan(self, number: int, persona: dict, start: dt.datetime, topic: str | None) -> Case:
        rng = self.rng
        topic = topic or rng.choices(list(demo_texts.TOPIC_WEIGHTS), weights=list(demo_texts.TOPIC_WEIGHTS.values()))[0]
        bank = demo_texts.TOPICS[topic]
        provider = persona["channel"] if rng.random() < 0.85 else rng.choice(list(CHANNEL_WEIGHTS))
        account = self.accounts[provider]
        order = order_number(rng)
        name = persona["name"].split()[0]
        steps = [Step(start, "in", {"text": rng.choice(bank["openers"]).format(order=order)})]
        t = start + self._agent_delay(start, first=True)
        if rng.random() < 0.35:
            steps.append(Step(t - dt.timedelta(minutes=rng.uniform(2, 10)), "assign", {}))
        if rng.random() < 0.22:
            steps.append(Step(t - dt.timedelta(minutes=1), "note", {"text": rng.choice(bank["notes"])}))
        replies = list(bank["replies"])
        rng.shuffle(replies)
        steps.append(Step(t, "reply", {"text": replies[0].format(name=name, order=order),
                                       "fail": self._refused(t)}))
        exchanges = rng.choices([0, 1, 2], weights=[55, 35, 10])[0] if topic != "praise" else 0
        for i in range(exchanges):
            if rng.random() < 0.3:
                steps.append(Step(t + dt.timedelta(minutes=1), "pending", {}))
            t += dt.timedelta(minutes=math.exp(rng.gauss(math.log(40), 1.0)))
            steps.append(Step(t, "in", {"text": rng.choice(bank["follow_ups"]).format(order=order)}))
            if rng.random() < 0.1:
                steps.append(Step(t + dt.timedelta(minutes=3), "assign", {"handover": True}))
            t += self._agent_delay(t, first=False)
            steps.append(Step(t, "reply", {"text": replies[(i + 1) % len(replies)].format(name=name, order=order),
                                           "fail": self._refused(t)}))
        if rng.random() < 0.9:
            t += dt.timedelta(minutes=math.exp(rng.gauss(math.log(30), 1.0)))
            steps += self._resolve_steps(t, topic)
            if rng.random() < 0.16:  # the customer comes back: the conversation reopens
                back = t + dt.timedelta(hours=rng.uniform(3, 24 * 6))
                steps.append(Step(back, "in", {"text": rng.choice(demo_texts.COMEBACKS)}))
                t = back + self._agent_delay(back, first=True)
                steps.append(Step(t, "reply", {"text": replies[-1].format(name=name, order=order),
                                               "fail": self._refused(t)}))
                t += dt.timedelta(minutes=math.exp(rng.gauss(math.log(45), 0.8)))
                steps += self._resolve_steps(t, topic, again=True)
        return Case(number, persona, account, topic, sorted(steps, key=lambda s: s.at))

    def _refused(self, at: dt.datetime) -> bool:
        """Whether the network refuses this reply on every try: now and then, and a little more
        often in the last day and a half, whose failed replies are left for "Try again"."""
        return self.rng.random() < (0.12 if self.now - at < dt.timedelta(hours=36) else 0.03)

    def _resolve_steps(self, t: dt.datetime, topic: str, again: bool = False) -> list[Step]:
        rng = self.rng
        survey = rng.random() < 0.55
        steps = [Step(t, "resolve", {"survey": survey})]
        mood = {"praise": 1.2, "question": 0.6, "complaint": -1.0, "outage": -0.6, "refund": -0.3}.get(topic, 0.0)
        mood -= 0.8 if again else 0.0
        if survey and rng.random() < 0.5:
            score = max(1, min(5, round(rng.gauss(3.9 + mood, 1.1))))
            steps.append(Step(t + dt.timedelta(minutes=rng.uniform(3, 600)), "answer", {"kind": "csat", "score": score}))
        extra = rng.random()
        if extra < 0.12:  # the supervisor's follow-up surveys, sent by code
            kind, score = ("nps", max(0, min(10, round(rng.gauss(7.6 + 1.5 * mood, 2.2))))) if extra < 0.07 else \
                ("ces", max(1, min(7, round(rng.gauss(5.2 + mood, 1.3)))))
            steps.append(Step(t + dt.timedelta(minutes=2), "survey", {"kind": kind}))
            if rng.random() < 0.6:
                steps.append(Step(t + dt.timedelta(minutes=rng.uniform(10, 900)), "answer",
                                  {"kind": kind, "score": score}))
        return steps

    # --- playing ----------------------------------------------------------------------
    def play(self) -> HistoryResult:
        clock = SimulatedClock(self.start)
        queue: list[tuple] = []
        for case in self.cases:
            for index, step in enumerate(case.steps):
                if step.at < self.now:
                    heapq.heappush(queue, (step.at, case.number, index, case, step))
        tick = self.start
        random.seed(self.seed)  # the demo network's own draws (refusals) come out the same every run
        with _played_in_process(clock):
            while queue:
                at, _, _, case, step = heapq.heappop(queue)
                while tick <= at:
                    clock.moment = tick
                    sla_breaches_check(now=tick)
                    handle_time.work_sessions_close_idle(now=tick)
                    tick += TICK
                if step.kind == "in":  # what else arrives before the next poll comes in the same batch
                    batch = [(case, step)]
                    while queue and queue[0][4].kind == "in" and queue[0][0] <= at + POLL_WINDOW \
                            and len(batch) < 50:
                        batch.append(heapq.heappop(queue)[3:])
                    clock.moment = batch[-1][1].at
                    self._inbound(batch)
                    continue
                clock.moment = at
                follow = getattr(self, f"_step_{step.kind}")(case, step, clock)
                for extra in follow or ():
                    if extra.at < self.now:
                        heapq.heappush(queue, (extra.at, case.number, 1000 + len(queue), case, extra))
            clock.moment = self.now
            sla_breaches_check(now=self.now)
        self.result.cases = len(self.cases)
        return self.result

    def _conversation(self, case: Case) -> Conversation | None:
        if case.conversation_id is None:
            return None
        return Conversation.objects.select_related("channel_account", "identity", "assignee", "queue").get(
            pk=case.conversation_id)

    def _inbound(self, batch: list[tuple[Case, Step]]) -> None:
        """One poll's customer messages, per channel account: ingested and routed in place."""
        by_account: dict[int, list] = {}
        for case, step in batch:
            self._ids += 1
            ext = f"{EXTERNAL_ID_PREFIX}{case.account.pk}-{self._ids}"
            persona, provider = case.persona, case.account.provider
            private = provider == "email"
            text = step.args["text"] if private else f"{case.account.handle} {step.args['text']}"
            by_account.setdefault(case.account.pk, []).append((case, ext, InboundMention(
                external_id=ext, text=text, created_at=step.at, author_external_id=f"demo-user-{persona['handle']}",
                author_handle=_handle_on(persona, provider), author_name=persona["name"],
                author_followers=persona["followers"], thread_id=case.thread_id or ext, is_private=private,
                language=language_hint(text), raw={"simulated": True},
            )))
            case.thread_id = case.thread_id or ext
        for items in by_account.values():
            account = items[0][0].account
            mentions_ingest(account=account, mentions=[m for _, _, m in items], route_now=True)
            stored = dict(Message.objects.filter(channel_account=account, external_id__in=[e for _, e, _ in items])
                          .values_list("external_id", "conversation_id"))
            for case, ext, _ in items:
                case.conversation_id = stored[ext]
            self.result.inbound += len(items)

    def _agent_for(self, conversation: Conversation, *, other_than: User | None = None) -> User:
        team_id = conversation.queue.team_id if conversation.queue_id else None
        agents = [a for a in self.agents_by_team.get(team_id, self.all_agents) if a != other_than] or self.all_agents
        return self.rng.choice(agents)

    def _step_assign(self, case: Case, step: Step, clock: SimulatedClock):
        conversation = self._conversation(case)
        if conversation is None or not conversation.is_open:
            return
        if conversation.assignee_id and not step.args.get("handover"):
            return
        agent = self._agent_for(conversation, other_than=conversation.assignee)
        inbox.conversation_assign(conversation=conversation, assignee=agent, actor=self.supervisor,
                                  reason="handed over" if step.args.get("handover") else "picked from the queue")

    def _step_note(self, case: Case, step: Step, clock: SimulatedClock):
        conversation = self._conversation(case)
        if conversation is None:
            return
        author = conversation.assignee or self._agent_for(conversation)
        inbox.note_create(conversation=conversation, author=author, text=step.args["text"])

    def _step_pending(self, case: Case, step: Step, clock: SimulatedClock):
        conversation = self._conversation(case)
        if conversation is not None and conversation.status == Status.OPEN:
            inbox.conversation_status_set(conversation=conversation, status=Status.PENDING,
                                          actor=conversation.assignee, reason="waiting on the customer")

    def _work(self, conversation: Conversation, agent: User, clock: SimulatedClock, minutes: float) -> None:
        """The agent in the thread (what the inbox socket reports), for handle time."""
        at = clock.moment
        for kind, before in (("open", minutes), ("active", 0.1)):
            clock.moment = at - dt.timedelta(minutes=before)
            agent_work_signalled.send(sender=Conversation, conversation_id=conversation.pk, agent_id=agent.pk,
                                      kind=kind)
        clock.moment = at

    def _step_reply(self, case: Case, step: Step, clock: SimulatedClock):
        conversation = self._conversation(case)
        if conversation is None or conversation.status in (Status.RESOLVED, Status.CLOSED):
            return
        agent = conversation.assignee or self._agent_for(conversation)
        self._work(conversation, agent, clock, minutes=self.rng.uniform(1.5, 8))
        private = not conversation.is_public
        if step.args.get("fail"):
            message = self._reply_refused(conversation, agent, step.args["text"], private, clock)
        else:
            message = inbox.reply_create(conversation=conversation, agent=agent, text=step.args["text"],
                                         private=private)
        self.result.replies += 1
        message.refresh_from_db(fields=["send_status"])
        if message.send_status == Message.SendStatus.FAILED:
            self.result.failed += 1
            if self.now - step.at > dt.timedelta(hours=36):  # the agent tries again; recent ones are left failed
                return [Step(step.at + dt.timedelta(minutes=self.rng.uniform(3, 25)), "retry",
                             {"message_id": message.pk, "agent_id": agent.pk})]
        return None

    def _reply_refused(self, conversation: Conversation, agent: User, text: str, private: bool,
                       clock: SimulatedClock) -> Message:
        """A reply the network refuses on every try: the send task's first attempt (run in
        process, its retry is raised instead of queued), then its last one minutes later,
        which gives up and marks the reply failed with the network's answer."""
        at = clock.moment
        with override_settings(DEMO_NETWORK_FAILURE_RATE=1.0):
            try:
                message = inbox.reply_create(conversation=conversation, agent=agent, text=text, private=private)
            except Retry:
                message = Message.objects.filter(conversation=conversation, author_user=agent).latest("id")
            send_task = task_named("outbound.send_message")
            clock.moment = at + dt.timedelta(minutes=self.rng.uniform(2, 6))
            send_task.apply(args=(message.pk,), retries=send_task.max_retries)
        clock.moment = at
        return message

    def _step_retry(self, case: Case, step: Step, clock: SimulatedClock):
        message = Message.objects.get(pk=step.args["message_id"])
        sending.message_retry(message=message, actor=User.objects.get(pk=step.args["agent_id"]))

    def _step_resolve(self, case: Case, step: Step, clock: SimulatedClock):
        conversation = self._conversation(case)
        if conversation is None or conversation.status in (Status.RESOLVED, Status.CLOSED):
            return
        actor = conversation.assignee or self._agent_for(conversation)
        inbox.conversation_resolve(conversation=conversation, actor=actor, send_survey=step.args["survey"])
        self.result.resolved += 1

    def _step_survey(self, case: Case, step: Step, clock: SimulatedClock):
        conversation = self._conversation(case)
        if conversation is not None and conversation.status == Status.RESOLVED:
            surveys.survey_send(conversation=conversation, actor=self.supervisor, kind=step.args["kind"])

    def _step_answer(self, case: Case, step: Step, clock: SimulatedClock):
        survey = (Survey.objects.filter(conversation_id=case.conversation_id, kind=step.args["kind"],
                                        answered_at__isnull=True).order_by("-sent_at").first())
        if survey is not None:
            surveys.survey_answer(survey=survey, score=step.args["score"])
            self.result.surveys_answered += 1


def customers_tier_set(*, seed: int = SEED) -> None:
    """A few of the demo's customers are VIPs (their next conversations rank higher)."""
    rng = random.Random(seed)
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    vips = rng.sample(ids, k=min(len(ids), max(1, len(ids) // 25)))
    Customer.objects.filter(pk__in=vips).update(tier=Customer.Tier.VIP)


def history_build(*, accounts: dict[str, ChannelAccount], supervisor: User, now: dt.datetime | None = None,
                  days: int = DAYS, customers: int = CUSTOMERS, seed: int = SEED) -> HistoryResult:
    """Plays the demo's history once; a second call finds it there and does nothing."""
    if history_exists():
        return HistoryResult()
    builder = HistoryBuilder(accounts=accounts, supervisor=supervisor, now=now or timezone.now(), days=days,
                             customers=customers, seed=seed)
    builder.plan()
    result = builder.play()
    customers_tier_set(seed=seed)
    return result
