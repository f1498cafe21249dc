"""Ingest throughput (1/2/4 worker processes), latency at a steady rate, and the
limits beside them in the same run (raw COPY rows/s, no-op Celery tasks/s).

Runs against BENCH_DB with real `celery worker` subprocesses on Redis."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import threading
import time

from .common import BENCH_DB, PY, REDIS_URL, ROOT, CpuMeter, bench_env, load, log, summary_ms

QUEUES = "ingest,routing,default"


# --- workers -------------------------------------------------------------------------
class Worker:
    """One `celery worker` (prefork) with `concurrency` processes, as in production."""

    def __init__(self, concurrency: int, queues: str = QUEUES, name: str = "bench"):
        self.name = f"{name}{concurrency}-{os.getpid()}@localhost"
        cmd = [PY, "-m", "celery", "-A", "bench.celery_app", "worker", "-P", "prefork", "-c", str(concurrency),
               "-Q", queues, "-n", self.name, "-l", "WARNING", "--without-gossip", "--without-mingle",
               "--without-heartbeat"]
        self.log = open(ROOT / "bench" / f".worker-{concurrency}.log", "w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=bench_env(BENCH_DB), stdout=self.log, stderr=self.log)

    def wait_ready(self, timeout: float = 60) -> None:
        from bench.celery_app import app

        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: see {self.log.name}")
            if app.control.ping(destination=[self.name], timeout=0.5):
                return
        raise RuntimeError("worker did not start")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def purge() -> None:
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    for q in QUEUES.split(",") + ["bench"]:
        r.delete(q)
    r.delete("unacked", "unacked_index", f"routing:pending:{BENCH_DB}")  # and batches waiting to be routed


# --- data -------------------------------------------------------------------------------
def setup_fixtures() -> dict:
    """A team of online agents with room to take everything, a default queue with
    auto-assignment, an admin for the API, one Twitter account."""
    from apps.accounts.models import Team, User
    from apps.connectors.models import ChannelAccount
    from apps.inbox.models import Queue

    team, _ = Team.objects.get_or_create(name="Bench care")
    agents = []
    for i in range(20):
        u, _ = User.objects.get_or_create(username=f"bench-agent-{i}", defaults={"role": "agent"})
        u.presence, u.capacity = "online", 1_000_000
        u.save()
        agents.append(u)
    team.members.add(*agents)
    mode = "least_loaded"
    queue, _ = Queue.objects.get_or_create(name="Bench default", defaults={"team": team, "is_default": True,
                                                                          "assignment_mode": mode})
    admin, _ = User.objects.get_or_create(username="bench-admin", defaults={"role": "admin", "is_superuser": True,
                                                                           "is_staff": True})
    account, _ = ChannelAccount.objects.get_or_create(provider="twitter", handle="@acme", defaults={"name": "Acme"})
    return {"account": account, "admin": admin, "queue": queue}


# Mentions of history in the inbox before each ingest run (BENCH_INGEST_HISTORY): a
# production inbox is never empty, and on emptied tables the planner's statistics
# say "no rows" while a run grows them to thousands in seconds (autovacuum analyzes
# every minute at best), so its joins fell back to hash joins over whole tables and
# each batch cost more as the run went on (docs/performance-history.md item 26).
HISTORY = int(os.environ.get("BENCH_INGEST_HISTORY", "20000"))
HISTORY_HANDLE = "@acme-history"


def _inbox_tables() -> list[str]:
    from apps.contacts.models import Customer, SocialIdentity
    from apps.inbox.models import Conversation, ConversationEvent, Message
    from apps.routing.models import ConversationRouting, UnroutedMessage

    # the routing rows point at conversations without a constraint (item 24): named, or no CASCADE reaches them
    return [m._meta.db_table for m in (Message, ConversationEvent, ConversationRouting, UnroutedMessage,
                                       Conversation, SocialIdentity, Customer)]


def reset_inbox(history: int | None = None) -> None:
    """Empties the inbox, then puts back `history` mentions' worth of closed
    conversations on another account (built once per database, then copied back)."""
    from django.db import connection

    history = HISTORY if history is None else history
    tables = _inbox_tables()
    with connection.cursor() as cur:
        cur.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
        if history:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", [f"bench_history_{history}_{tables[0]}"])
            if cur.fetchone()[0]:
                for t in reversed(tables):  # the referenced first
                    cur.execute(f"INSERT INTO {t} SELECT * FROM bench_history_{history}_{t}")
            else:
                _history_build(history)
                for t in tables:
                    cur.execute(f"DROP TABLE IF EXISTS bench_history_{history}_{t}")
                    cur.execute(f"CREATE TABLE bench_history_{history}_{t} AS SELECT * FROM {t}")
        cur.execute("VACUUM ANALYZE")


def _history_build(n: int) -> None:
    """n mentions ingested on the history account (batches of 1,000, not routed),
    their conversations closed, as most of a working inbox's are."""
    from apps.connectors.models import ChannelAccount
    from apps.connectors.providers.base import mention_from_dict
    from apps.inbox.models import Conversation, Status
    from apps.ingest.services import mentions_ingest
    from apps.routing.models import UnroutedMessage

    from .mentions import make_mentions

    started = time.time()
    account, _ = ChannelAccount.objects.get_or_create(provider="twitter", handle=HISTORY_HANDLE,
                                                      defaults={"name": "Acme history"})
    # a month back: history, not in the time range of what a run sends (the latency observer reads by date)
    mentions = make_mentions(n, f"h{int(started)}", seed=3, days_ago=30)
    for i in range(0, n, 1000):
        mentions_ingest(account=account, mentions=[mention_from_dict(m) for m in mentions[i:i + 1000]])
    Conversation.objects.filter(channel_account=account).update(status=Status.CLOSED)
    UnroutedMessage.objects.all().delete()
    purge()  # the routing tasks the history queued
    log(f"ingest history: {n} mentions in {time.time() - started:.0f} s")


def _progress(account_id: int) -> tuple[int, int]:
    """(stored, routed): ingest scores a message with the INSERT, so routed is
    "no routing.UnroutedMessage row left", not "has a sentiment label"."""
    from apps.inbox.models import Message

    stored = Message.objects.filter(channel_account_id=account_id).count()
    return stored, stored - _waiting(account_id)


def _waiting(account_id: int) -> int:
    from apps.routing.models import UnroutedMessage

    return UnroutedMessage.objects.filter(message__channel_account_id=account_id).count()


def all_routed(account_id: int, n: int) -> bool:
    """Polled by the runs on the cores they measure: the routing markers left (a few
    hundred rows at most) first, and the stored messages counted only when none is
    left. Counting every message of the run against its markers at each poll cost
    16 ms at 20,000 mentions, 8% of a core at 5 polls a second."""
    from apps.inbox.models import Message

    return not _waiting(account_id) and Message.objects.filter(channel_account_id=account_id).count() >= n


# --- throughput ---------------------------------------------------------------------------
def ingest_throughput(*, workers: int, n: int, batch: int, account, via: str = "tasks") -> dict:
    """Preload n mentions, start the workers, and time from the first stored row
    until every message is stored, threaded, scored and routed.
    via="tasks": `ingest.mentions` tasks of `batch` mentions each, as a poll hands
    a page (or `batch` / 100 pages) over. via="push": n push deliveries of one
    mention each, as the webhook keeps them (Twitter's Account Activity API sends
    one event a delivery), with the one task the first delivery queues: the
    delivery tasks take them PUSH_INGEST_BATCH at a time (`batch` is ignored)."""
    from django.db import connection
    from django.db.models import Max, Min

    from apps.connectors.models import PushDelivery
    from apps.connectors.push import push_ingest_flag, push_ingest_queue
    from apps.inbox.models import Conversation, Message
    from apps.ingest.tasks import mentions_ingest_task

    from .mentions import make_mentions

    reset_inbox()
    purge()
    tag = f"t{workers}-{int(time.time())}"
    mentions = make_mentions(n, tag)
    if via == "push":
        from django.conf import settings
        from django.core.cache import cache

        PushDelivery.objects.all().delete()
        first = PushDelivery.objects.bulk_create([PushDelivery(account=account, mentions=[m]) for m in mentions])[0]
        with connection.cursor() as cur:
            # n rows in a second, into a table the statistics saw empty: as the webhook's steady
            # trickle would have left them for autovacuum, not a plan for an empty table
            cur.execute(f"ANALYZE {PushDelivery._meta.db_table}")
        cache.delete(push_ingest_flag(account.pk))
        push_ingest_queue(account.pk, first.pk, gather=False)
        batch = settings.PUSH_INGEST_BATCH
    else:
        for i in range(0, n, batch):
            mentions_ingest_task.apply_async(args=[account.pk, mentions[i:i + batch]])
    w = Worker(workers)
    timeout = max(120, n / 50)
    try:
        load_before = load()
        with CpuMeter() as cpu:
            t0 = time.time()
            while time.time() - t0 < timeout:
                if all_routed(account.pk, n):
                    break
                time.sleep(0.5)  # the end is read from the rows' times: polling only says when to look
    finally:
        w.stop()
    stored, scored = _progress(account.pk)
    msgs = Message.objects.filter(channel_account=account).aggregate(first=Min("created_at"), last=Max("updated_at"))
    convs = Conversation.objects.filter(channel_account=account)
    conv_last = convs.aggregate(last=Max("updated_at"))["last"]
    last = max(filter(None, [msgs["last"], conv_last]))
    seconds = (last - msgs["first"]).total_seconds() if scored >= n else float("nan")
    return {
        "workers": workers, "via": via, "mentions": n, "batch": batch, "stored": stored, "scored": scored,
        "seconds": seconds, "rate": n / seconds if seconds else float("nan"),
        "conversations": convs.count(), "routed": convs.exclude(queue=None).count(),
        "assigned": convs.exclude(assignee=None).count(), "cpu_busy": cpu.busy, "load": load_before,
    }


# --- where the CPU goes -----------------------------------------------------------------------
def cpu_stages(*, account, n: int, batch: int = 100) -> dict:
    """Ingest end to end in this one process, as a worker runs it (batches of
    `batch`, routed in place after each commit), with the Python CPU of each
    stage: scoring (language + sentiment), routing, and the rest (threading and
    storing). Wall minus Python CPU is the time spent waiting on PostgreSQL (its
    CPU and the round trips). Sets the floor: 2 cores give 2,000 ms of CPU a
    second, so 2,000 mentions/s needs ~1 ms of CPU per mention, both sides."""
    import apps.ingest.services as ingest_services
    import apps.routing.services as routing_services
    from apps.connectors.providers.base import mention_from_dict

    from .mentions import make_mentions

    reset_inbox()
    spent = {"scoring": 0.0, "routing": 0.0}

    def timed(stage, fn):
        def run(*args, **kwargs):
            started = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[stage] += time.process_time() - started
        return run

    warm = make_mentions(2 * batch, f"w{int(time.time())}")
    batches = [[mention_from_dict(m) for m in warm[i:i + batch]] for i in range(0, len(warm), batch)]
    mentions = make_mentions(n, f"s{int(time.time())}")
    timed_batches = [[mention_from_dict(m) for m in mentions[i:i + batch]] for i in range(0, n, batch)]
    for b in batches:  # models and caches warm, as in a running worker
        ingest_services.mentions_ingest(account=account, mentions=b, route_now=True)
    originals = ingest_services.text_score, routing_services.conversations_route_now
    ingest_services.text_score = timed("scoring", originals[0])
    routing_services.conversations_route_now = timed("routing", originals[1])
    try:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for b in timed_batches:
            ingest_services.mentions_ingest(account=account, mentions=b, route_now=True)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        ingest_services.text_score, routing_services.conversations_route_now = originals
    per = 1e3 / n
    return {"mentions": n, "batch": batch, "python_ms": cpu * per, "wall_ms": wall * per,
            "scoring_ms": spent["scoring"] * per, "routing_ms": spent["routing"] * per,
            "storing_ms": (cpu - spent["scoring"] - spent["routing"]) * per,
            "waiting_ms": (wall - cpu) * per, "rate": n / wall, "load": load()}


# --- latency --------------------------------------------------------------------------------
LATENCY_SENDERS = 2  # webhook processes: one process's GIL shared with the API poller stalls its sends


def _deliveries_send(db: str, account_id: int, mentions: list[dict], rate: float, start: float) -> dict:
    """One sender process (as a web worker receiving webhooks): each mention is a push
    delivery taken by the webhook's own path after its signature check
    (`push_delivery_accept`: the row kept in PostgreSQL, then `ingest.push_delivery`
    queued), at its due time. Returns {external_id: wall time sent}."""
    from .common import django_setup

    django_setup(db)
    from apps.connectors.models import ChannelAccount
    from apps.connectors.providers.base import mention_from_dict
    from apps.connectors.push import push_delivery_accept

    account = ChannelAccount.objects.get(pk=account_id)
    sent = {}
    for due, m in mentions:
        delay = start + due - time.time()
        if delay > 0:
            time.sleep(delay)
        sent[m["external_id"]] = time.time()
        push_delivery_accept(account=account, mentions=[mention_from_dict(m)])
    return sent


def ingest_latency(*, rate: float, seconds: float, workers: int, account, admin) -> dict:
    """Mentions arrive one per push delivery at `rate`/s from LATENCY_SENDERS
    processes; a client polls GET /api/v1/conversations/ every 100 ms as an admin
    and notes when each mention's conversation is listed (stored) and when it
    has its queue and agent (routed: language, sentiment, rules, priority, SLA,
    queue and assignee are set in one routing transaction)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from rest_framework.test import APIClient

    from .mentions import make_mentions

    reset_inbox()
    purge()
    tag = f"lat{int(time.time())}"
    n = int(rate * seconds)
    # Every arrival is a new customer's first message: each becomes a new row in the list.
    mentions = make_mentions(n, tag, seed=3, new_share=1.0)
    for m in mentions:
        m["text"] = f"{m['external_id']} {m['text']}"
    seen: dict[str, float] = {}
    routed: dict[str, float] = {}
    poll_times: list[float] = []
    stop = threading.Event()
    w = Worker(workers)
    w.wait_ready()
    senders = ProcessPoolExecutor(LATENCY_SENDERS, mp_context=multiprocessing.get_context("spawn"))
    list(senders.map(time.sleep, [0.1] * LATENCY_SENDERS))  # started (Django set up on first use)

    def watcher():
        """Each poll reads two lists of the API: the conversations whose message is
        no older than the oldest mention not listed yet (`date_from`: each
        mention's time orders them as they are sent), for what is new; and the
        whole `unassigned` view, which holds what waits for routing (every routed
        conversation here gets an agent): a listed row gone from it has been
        routed. Reading the whole list down to the oldest unrouted row instead
        cost this observer ~0.7 of a core at 200/s, on the cores it measures, and
        missed rows committed out of id order."""
        from urllib.parse import urlencode

        from django.db import connection

        client = APIClient()
        client.force_authenticate(admin)
        oldest = 0  # index of the oldest mention not listed yet

        def read(url: str, now_seen: set) -> float:
            now = time.time()
            while url:
                data = client.get(url).json()
                now = time.time()
                for row in data["results"]:
                    key = row["subject"].split(" ", 1)[0]
                    now_seen.add(key)
                    if key not in seen:
                        seen[key] = now
                    if key not in routed and row["queue"] is not None:
                        routed[key] = now
                url = data.get("next")
            return now

        while not stop.is_set():
            t = time.time()
            while oldest < n and mentions[oldest]["external_id"] in seen:
                oldest += 1
            if oldest < n:
                read("/api/v1/conversations/?" + urlencode({"date_from": mentions[oldest]["created_at"]}), set())
            waiting: set[str] = set()
            now = read("/api/v1/conversations/?view=unassigned", waiting)
            for key in [k for k in seen if k not in routed and k not in waiting]:
                routed[key] = now  # listed before, gone from the view of what waits: it has its agent
            poll_times.append(time.time() - t)
            stop.wait(max(0.0, 0.1 - (time.time() - t)))
        connection.close()

    th = threading.Thread(target=watcher, daemon=True)
    th.start()
    load_before = load()
    with CpuMeter() as cpu:
        start = time.time() + 2.0  # the senders set Django up meanwhile
        due = [(i / rate, m) for i, m in enumerate(mentions)]
        futures = [senders.submit(_deliveries_send, BENCH_DB, account.pk, due[k::LATENCY_SENDERS], rate, start)
                   for k in range(LATENCY_SENDERS)]
        sent: dict[str, float] = {}
        for f in futures:
            sent.update(f.result())
        send_seconds = max(sent.values()) - start
        end = time.time() + 30
        while time.time() < end and len(routed) < n:
            time.sleep(0.1)
    stop.set()
    th.join(5)
    senders.shutdown()
    w.stop()
    stored_lat = [seen[k] - sent[k] for k in sent if k in seen]
    routed_lat = [routed[k] - sent[k] for k in sent if k in routed]
    return {
        "rate": rate, "achieved_rate": n / send_seconds, "seconds": seconds, "workers": workers, "mentions": n,
        "senders": LATENCY_SENDERS, "visible": len(stored_lat), "routed": len(routed_lat),
        "stored_ms": summary_ms(stored_lat), "routed_ms": summary_ms(routed_lat),
        "api_poll_ms": summary_ms(poll_times), "cpu_busy": cpu.busy, "load": load_before,
    }


# --- limits -------------------------------------------------------------------------------------
def copy_limit(rows: int) -> dict:
    """Raw COPY into a table shaped like inbox_message (same columns, same indexes)."""
    import json

    from django.db import connection

    from apps.inbox.models import Message

    table = Message._meta.db_table
    cols = ["created_at", "updated_at", "conversation_id", "channel_account_id", "direction", "kind",
            "external_id", "in_reply_to_external_id", "author_identity_id", "is_bot", "text", "url", "raw",
            "sent_at", "send_status", "failure_reason", "send_attempts", "sentiment_label", "language"]
    now = "2026-01-01 00:00:00+00"
    buf = io.StringIO()
    for i in range(rows):
        raw = json.dumps({"id": f"c{i}", "text": "@acme my order still hasn't arrived"})
        buf.write("\t".join([now, now, "1", "1", "in", "public", f"c{i}", "", "1", "f",
                             "@acme my order #12345 still hasn't arrived and it's been two weeks. Where is it?",
                             f"https://twitter.com/x/status/c{i}", raw, now, "received", "", "0", "", ""]) + "\n")
    data = buf.getvalue().encode()
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_copy_limit")
        cur.execute(f"CREATE TABLE bench_copy_limit (LIKE {table} INCLUDING DEFAULTS INCLUDING INDEXES "
                    "INCLUDING IDENTITY)")
        raw_conn = cur.connection
        t = time.perf_counter()
        with raw_conn.cursor().copy(f"COPY bench_copy_limit ({', '.join(cols)}) FROM STDIN") as cp:
            for i in range(0, len(data), 1 << 20):
                cp.write(data[i:i + (1 << 20)])
        raw_conn.commit() if not raw_conn.autocommit else None
        seconds = time.perf_counter() - t
        cur.execute("DROP TABLE bench_copy_limit")
    return {"rows": rows, "seconds": seconds, "rate": rows / seconds, "load": load()}


def noop_limit(*, workers: int, n: int) -> dict:
    """No-op Celery tasks through the same Redis: preload n, start the worker, time the drain."""
    import redis

    from bench.celery_app import NOOP_COUNTER, noop

    r = redis.Redis.from_url(REDIS_URL)
    purge()
    r.delete(NOOP_COUNTER, "bench:noop:times")
    for _ in range(n):
        noop.apply_async(args=[n], queue="bench")
    w = Worker(workers, queues="bench", name="noop")
    load_before = load()
    try:
        with CpuMeter() as cpu:
            end = time.time() + max(60, n / 200)
            while time.time() < end and int(r.get(NOOP_COUNTER) or 0) < n:
                time.sleep(0.1)
    finally:
        w.stop()
    times = {k.decode(): float(v) for k, v in r.hgetall("bench:noop:times").items()}
    done = int(r.get(NOOP_COUNTER) or 0)
    seconds = times.get("last", float("nan")) - times.get("first", float("nan"))
    return {"workers": workers, "tasks": n, "done": done, "seconds": seconds, "rate": (n - 1) / seconds,
            "cpu_busy": cpu.busy, "load": load_before}
