"""Soak: N minutes of mixed load with faults injected, ending with a count check.

    .venv/bin/python -m bench.soak --minutes 30        # the default is 30
    .venv/bin/python -m bench.soak --minutes 5 --rate 8

Real processes on PostgreSQL + a private Redis (AOF on, as docs/operations.md
recommends): N `celery worker` subprocesses, the stand-in Twitter API in this
process. Load: mentions appear on the network (polled every second by a beat
stand-in), a third of them are also pushed (the same mention by poll and push,
twice, through the durable push path: push_delivery_accept), push-only
mentions arrive as signed webhooks on a generic channel, over real HTTP to a
gunicorn (POST /hooks/webhook/.., retried on a 5xx or a broken connection as a
network does), the beat stand-in also sends the push-delivery sweep and (every
60 s, as beat does) the unrouted-message sweep, and agents reply. Faults, one
every few seconds at random: worker SIGKILL (whole worker or one pool process),
Redis SIGKILL + restart, pg_terminate_backend on the workers' connections, a
gunicorn worker SIGKILLed while a burst of deliveries is being posted
(mid-request), and the network answering 500, 429 (with reset), timeouts,
malformed JSON (each until polls took it or OUTAGE_SECONDS, 20, passed: an
outage lasts a while, not a number of polls), and holding a reply's answer until
the client gives up (unknown outcome).

A watcher samples the database twice a second: a customer message counts as
routed once its routing marker is gone. Arrival -> routed latency is reported
per path (poll, poll+push, push: from the moment the mention appeared on the
network or was first posted) as p50/p90/p99/max.

At the end it drains and checks: every mention sent in is in the database
exactly once, no reply was posted twice, every reply ended sent, every push
delivery ended done, every mention was routed, and every path's p99 arrival ->
routed latency is within --routed-p99-seconds (120 s: polled mentions must not
wait for the drain). Exit status 0 only if all checks hold. Figures are printed
(and written to --json)."""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _setup(args):
    import psycopg

    base, _, dbname = args.database_url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone():
            c.execute(f'CREATE DATABASE "{dbname}"')
    from tests.reliability.procs import RedisServer

    redis = RedisServer(appendonly=True, workdir=Path(tempfile.mkdtemp(prefix="cx-soak-redis-"))).start()
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "cxinbox.settings.test", "DATABASE_URL": args.database_url,
        "REDIS_URL": redis.url, "AXES_ENABLED": "false", "CELERY_VISIBILITY_TIMEOUT": "20",
        "CELERY_UNACKED_RESTORE_INTERVAL": "2", "CELERY_UNACKED_RESTORE_THROTTLE": "1",
        # push deliveries whose task Redis lost are queued again after 10 s (workers read it)
        "PUSH_REDELIVER_SECONDS": "10",
        # tasks stop before the (shortened) visibility timeout, as in production (3600 s vs 240/300 s)
        "CELERY_TASK_SOFT_TIME_LIMIT": "15", "CELERY_TASK_TIME_LIMIT": "18",
        "CELERY_LONG_TASK_SOFT_TIME_LIMIT": "15", "CELERY_LONG_TASK_TIME_LIMIT": "18",
    })
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    return redis


class Soak:
    def __init__(self, args, redis):
        from django.conf import settings

        from apps.connectors.standins.twitter import TwitterStandIn
        from tests.factories import ChannelAccountFactory, QueueFactory, TeamFactory, UserFactory
        from tests.reliability.procs import Worker, client_app

        self.args, self.redis, self.rng = args, redis, random.Random(args.seed)
        self.net = TwitterStandIn().start()
        settings.TWITTER_API_BASE_URL = self.net.base_url
        settings.PROVIDER_TIMEOUT_SECONDS = 3.0
        team = TeamFactory()
        QueueFactory(team=team, is_default=True)
        self.agent = UserFactory(role="agent")
        team.members.add(self.agent)
        self.account = ChannelAccountFactory()
        # a push-only channel: its mentions come in only as signed webhooks
        self.hook_account = ChannelAccountFactory(
            provider="webhook", name="Shop chat", handle="shop-chat", external_user_id="", credentials={},
            hook_secrets={"inbound_token": "soak-token", "signing_secret": "soak-secret"})
        self.web = WebServer(args.database_url, redis.url, log_dir=Path(tempfile.mkdtemp(prefix="cx-soak-web-")))
        self.web.start()
        self.hook_url = f"{self.web.base_url}/hooks/webhook/{self.hook_account.pk}/"
        for i in range(200):
            self.net.add_user(str(10_000 + i), f"customer{i}", f"Customer {i}", followers=i * 7)
        self.broker = client_app(redis.url)
        self.log_dir = Path(tempfile.mkdtemp(prefix="cx-soak-logs-"))
        self.Worker = Worker
        self.workers = [self._worker() for _ in range(args.workers)]
        self.sent_in: dict[str, str] = {}  # external id -> how it came (poll | poll+push | push)
        self.replies: dict[int, str] = {}  # message id -> text
        self.arrived: dict[str, float] = {}  # external id -> when it appeared on the network / was first posted
        self.watch = RoutedWatch()
        self.web_kills_mid_request = self.burst_n = 0
        self.outages: list[tuple[float, object]] = []  # (ends at, stand-in fault)
        self.faults = collections.Counter()
        self.publish_retries = 0
        self.hook_retries = collections.Counter()  # answer (or exception) -> count
        self.reply_errors = 0
        self.n = 0

    def _worker(self):
        return self.Worker(self.redis.url, concurrency=2, log_dir=self.log_dir, env={
            k: os.environ[k] for k in ("CELERY_VISIBILITY_TIMEOUT", "CELERY_UNACKED_RESTORE_INTERVAL",
                                       "CELERY_UNACKED_RESTORE_THROTTLE", "CELERY_TASK_SOFT_TIME_LIMIT",
                                       "CELERY_TASK_TIME_LIMIT", "CELERY_LONG_TASK_SOFT_TIME_LIMIT",
                                       "CELERY_LONG_TASK_TIME_LIMIT")}).start()

    # --- load -------------------------------------------------------------------------
    def _publish(self, name, args, must=False):
        """Like beat (a lost tick is fine) or a webhook (retried until taken)."""
        for _ in range(600 if must else 1):
            try:
                self.broker.send_task(name, args)
                return True
            except Exception:  # noqa: BLE001 - Redis down
                self.publish_retries += 1
                time.sleep(0.1)
        return False

    def _mention(self):
        from apps.connectors.providers.twitter import TwitterProvider
        from apps.connectors.push import push_delivery_accept

        self.n += 1
        author = str(10_000 + self.rng.randrange(200))
        kind = self.rng.random()
        if kind < 0.15:  # push only (a webhook network)
            self._push_only(author)
            return
        arrived = time.time()
        tweet = self.net.add_mention(f"@acme problem number {self.n}: {self.rng.choice(TEXTS)}", author_id=author)
        self.arrived[tweet["id"]] = arrived
        self.sent_in[tweet["id"]] = "poll"
        if kind < 0.45:  # the same mention by push too, twice
            users = {author: self.net.users[author]}
            mention = TwitterProvider(self.account).normalize(tweet, users, {})
            for _ in range(2):  # kept in PostgreSQL, queued on commit (a Redis down: the sweep queues it)
                push_delivery_accept(account=self.account, mentions=[mention])
            self.sent_in[tweet["id"]] = "poll+push"

    def _push_only(self, author, burst=False):
        """A push-only mention (a webhook network); the bursts of the web fault are counted apart."""
        if burst:
            self.burst_n += 1
        ext = f"push-burst-{self.burst_n}" if burst else f"push-{self.n}"
        self.arrived[ext] = time.time()
        self.sent_in[ext] = "push"
        return self._webhook({"id": ext, "text": f"@acme pushed {ext}", "created_at": _now().isoformat(),
                              "author": {"id": author, "handle": f"h{author}"}})

    def _webhook(self, message) -> int:
        """Over HTTP to gunicorn, signed afresh on every try, answered 2xx only once the
        delivery is in PostgreSQL; a 5xx, a refused or broken connection (its worker
        killed mid-request) is retried, as networks do. Returns the failed tries."""
        import requests

        from apps.connectors.providers.webhook import signed_headers

        body = json.dumps({"messages": [message]}).encode()
        for attempt in range(600):
            headers = {**signed_headers("soak-secret", body), "Authorization": "Bearer soak-token",
                       "Content-Type": "application/json"}
            try:
                resp = requests.post(self.hook_url, data=body, headers=headers, timeout=15)
            except requests.RequestException as exc:  # a worker killed mid-request, or being restarted
                self.hook_retries[type(exc).__name__] += 1
            else:
                if resp.status_code == 200:
                    return attempt
                self.hook_retries[str(resp.status_code)] += 1
                if resp.status_code == 409:  # "already received": stored by a try whose answer was lost
                    return attempt + 1
                if resp.status_code < 500:
                    raise RuntimeError(f"webhook refused: {resp.status_code} {resp.content[:200]!r}")
            time.sleep(0.1)
        raise RuntimeError("webhook never accepted")

    def _reply(self):
        from apps.inbox.models import Conversation
        from apps.inbox.services import reply_create

        conv = (Conversation.objects.filter(messages__direction="in", status__in=["new", "open"])
                .exclude(messages__direction="out").exclude(messages__external_id__startswith="push-")
                .order_by("?").first())  # push-only mentions are not on the stand-in network: no reply target
        if conv is None:
            return
        text = f"@{conv.identity.handle} sorry about that, ref {len(self.replies) + 1}"
        try:
            msg = reply_create(conversation=conv, agent=self.agent, text=text)
            self.replies[msg.pk] = text
        except Exception:  # noqa: BLE001 - stored, but its task could not be queued (Redis down)
            self.reply_errors += 1
            from apps.inbox.models import Message

            msg = Message.objects.filter(conversation=conv, direction="out", text=text).first()
            if msg:
                self.replies[msg.pk] = text

    # --- faults -----------------------------------------------------------------------
    def _fault(self):
        from tests.reliability.procs import terminate_worker_connections

        kind = self.rng.choice(FAULTS)
        self.faults[kind] += 1
        mentions_path = f"/2/users/{self.account.external_user_id}/mentions"
        if kind == "worker SIGKILL":
            victim = self.rng.randrange(len(self.workers))
            self.workers[victim].kill()
            self.workers[victim] = self._worker()
        elif kind == "pool process SIGKILL":
            pids = self.rng.choice(self.workers).pool_pids()
            if pids:
                os.kill(self.rng.choice(pids), signal.SIGKILL)
        elif kind == "redis restart":
            self.redis.restart(sig=signal.SIGKILL, down_for=1.0)
        elif kind == "postgres connections dropped":
            terminate_worker_connections()
        elif kind == "web worker SIGKILL mid-request":
            # a burst of deliveries over HTTP; one gunicorn worker is killed while they are in
            # flight: the sender sees a broken connection and retries (the arbiter starts a new worker)
            pids = self.web.worker_pids()
            if pids:
                killer = threading.Timer(self.rng.uniform(0.01, 0.06), _kill_quietly, (self.rng.choice(pids),))
                killer.start()
                failed = sum(self._push_only(str(10_000 + self.rng.randrange(200)), burst=True) for _ in range(12))
                killer.join()
                self.web_kills_mid_request += bool(failed)
        elif kind == "network 500":
            self._outage(self.net.add_fault("GET", mentions_path, status=500, remaining=3))
        elif kind == "network 429":
            reset = int(time.time()) + 5
            self._outage(self.net.add_fault("GET", mentions_path, status=429, headers={"x-rate-limit-reset": str(reset)}))
        elif kind == "network timeout":
            self._outage(self.net.add_fault("GET", mentions_path, delay=4, status=503))
        elif kind == "malformed JSON":
            self._outage(self.net.add_fault("GET", mentions_path, status=200, body=b'{"data": [{"id": '))
        elif kind == "reply answer held (unknown outcome)":
            self.net.add_fault("POST", "/2/tweets", delay=4, after_handling=True)
        elif kind == "reply 500":
            self.net.add_fault("POST", "/2/tweets", status=500)

    def _outage(self, fault):
        """A poll fault lasts until polls took it or OUTAGE_SECONDS passed, as a network's bad
        minute does: one that waited for N polls however long that took made a backing-off
        account's outage longer the longer it waited (9 stacked 500s spread over 4 minutes)."""
        self.outages.append((time.monotonic() + OUTAGE_SECONDS, fault))

    def _outages_end(self, tick):
        ended = [f for until, f in self.outages if until <= tick]
        if ended:
            with self.net.lock:
                self.net.faults[:] = [f for f in self.net.faults if all(f is not e for e in ended)]
            self.outages = [(until, f) for until, f in self.outages if until > tick]

    # --- run --------------------------------------------------------------------------
    def run(self):
        from apps.connectors.models import ChannelAccount

        self.watch.start()
        end = time.monotonic() + self.args.minutes * 60
        next_poll = next_reply = next_sweep = 0.0
        next_unrouted_sweep = time.monotonic() + 60
        next_fault = time.monotonic() + self.args.fault_every
        started = time.monotonic()
        last_report = started
        while time.monotonic() < end:
            tick = time.monotonic()
            for _ in range(self._due(tick, started)):
                self._mention()
            if tick >= next_poll:
                # beat: the account is due unless it is backing off
                account = ChannelAccount.objects.get(pk=self.account.pk)
                if account.next_poll_at is None or account.next_poll_at <= _now():
                    self._publish("connectors.poll_account", [self.account.pk])
                next_poll = tick + 1.0
            if tick >= next_sweep:  # beat: push deliveries left pending
                self._publish("connectors.push_deliveries_sweep", [])
                next_sweep = tick + 5.0
            if tick >= next_unrouted_sweep:  # beat (ROUTING_SWEEP_SECONDS): a message whose worker died before
                self._publish("routing.unrouted_sweep", [])  # routing it is routed after 120 s
                next_unrouted_sweep = tick + 60.0
            if tick >= next_reply:
                self._reply()
                next_reply = tick + self.args.reply_every
            self._outages_end(tick)
            if tick >= next_fault:
                self._fault()
                next_fault = tick + self.rng.uniform(0.5, 1.5) * self.args.fault_every
            if tick - last_report > 60:
                last_report = tick
                print(f"  {int(tick - started)}s: {len(self.sent_in)} mentions in, {self._stored()} stored, "
                      f"{sum(self.faults.values())} faults", flush=True)
            time.sleep(0.05)
        self.load_seconds = time.monotonic() - started

    def _due(self, tick, started):
        want = int((tick - started) * self.args.rate)
        return max(0, want - self.n)

    def _stored(self):
        from apps.inbox.models import Message

        return Message.objects.filter(direction="in").count()

    def drain(self, timeout=200):
        from apps.connectors.models import ChannelAccount, PushDelivery
        from apps.inbox.models import Message

        self.net.faults.clear()
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            for w in self.workers:
                if w.proc.poll() is not None:
                    self.faults["worker found dead at drain (restarted)"] += 1
                    self.workers[self.workers.index(w)] = self._worker()
            ChannelAccount.objects.filter(pk=self.account.pk).update(next_poll_at=None)
            self._publish("connectors.poll_account", [self.account.pk])
            self._publish("connectors.push_deliveries_sweep", [])
            self._publish("routing.unrouted_sweep", [])
            pushes_pending = PushDelivery.objects.filter(status="pending").exists()
            pending = Message.objects.filter(pk__in=list(self.replies), send_status__in=["queued", "sending"])
            for msg_id in pending.filter(updated_at__lt=_now() - _seconds(30)).values_list("pk", flat=True):
                self._publish("outbound.send_message", [msg_id])  # what a stale-send sweep would do
            if (self._stored() >= len(self.sent_in) and not pending.exists() and not pushes_pending
                    and set(self.sent_in) <= set(self.watch.routed_at)):
                break
            time.sleep(2)
        self.drain_seconds = time.monotonic() - started
        self.watch.stop()

    def check(self) -> dict:
        from apps.connectors.models import PushDelivery
        from apps.inbox.models import Conversation, Message

        deliveries = collections.Counter(PushDelivery.objects.values_list("status", flat=True))
        stored = collections.Counter(Message.objects.filter(direction="in").values_list("external_id", flat=True))
        missing = sorted(set(self.sent_in) - set(stored))
        doubled = sorted(k for k, v in stored.items() if v > 1)
        extra = sorted(set(stored) - set(self.sent_in))
        posts = collections.Counter(t["text"] for t in self.net.posted)
        posted_twice = sorted(t for t, c in posts.items() if c > 1)
        statuses = collections.Counter(Message.objects.filter(pk__in=list(self.replies))
                                       .values_list("send_status", flat=True))
        figures = {
            "minutes": round(self.load_seconds / 60, 2), "drain_seconds": round(self.drain_seconds, 1),
            "workers": self.args.workers, "rate_per_second": self.args.rate,
            "mentions_sent_in": len(self.sent_in),
            "by_source": dict(collections.Counter(self.sent_in.values())),
            "mentions_stored": sum(stored.values()), "missing": len(missing), "stored_twice": len(doubled),
            "unexpected": len(extra), "conversations": Conversation.objects.count(),
            "unrouted_conversations": Conversation.objects.filter(queue__isnull=True).count(),
            "replies": len(self.replies), "reply_statuses": dict(statuses), "posts": len(self.net.posted),
            "replies_posted_twice": len(posted_twice), "replies_whose_task_could_not_be_queued": self.reply_errors,
            "publish_retries_while_redis_down": self.publish_retries,
            "webhook_retries": dict(self.hook_retries), "push_deliveries": dict(deliveries),
            "faults": dict(self.faults),
            "faults_total": sum(self.faults.values()),
            "web_worker_kills_that_broke_a_request": self.web_kills_mid_request,
            "routed_p99_bound_seconds": self.args.routed_p99_seconds,
            "arrival_to_routed_seconds": self._latency(),
        }
        late = {path: row["p99"] for path, row in figures["arrival_to_routed_seconds"].items()
                if row["not_routed"] or row["p99"] is None or row["p99"] > self.args.routed_p99_seconds}
        figures["late_paths"] = late
        figures["ok"] = (not missing and not doubled and not extra and not posted_twice
                         and statuses.get("sent", 0) == len(self.replies)
                         and set(deliveries) <= {"done"} and not late)
        figures["examples"] = {"missing": missing[:5], "doubled": doubled[:5], "posted_twice": posted_twice[:3]}
        return figures

    def _latency(self) -> dict:
        """Arrival -> routed seconds per path: poll, poll+push (both), push."""
        by_path = collections.defaultdict(list)
        not_routed = collections.Counter()
        for ext, path in self.sent_in.items():
            routed = self.watch.routed_at.get(ext)
            if routed is None:
                not_routed[path] += 1
            else:
                by_path[path].append(max(0.0, routed - self.arrived[ext]))
        out = {}
        for path in ("poll", "poll+push", "push"):
            values = sorted(by_path[path])
            out[path] = {"count": len(values), "not_routed": not_routed[path],
                         **{name: _percentile(values, q) for name, q in (("p50", 50), ("p90", 90), ("p99", 99))},
                         "max": round(values[-1], 1) if values else None}
        return out

    def stop(self):
        self.watch.stop()
        self.web.stop()
        for w in self.workers:
            w.kill()
        self.broker.close()
        self.net.stop()
        self.redis.stop()


OUTAGE_SECONDS = 20.0  # how long a poll fault (500, 429, timeout, malformed page) can last
FAULTS = ["worker SIGKILL", "pool process SIGKILL", "redis restart", "postgres connections dropped",
          "web worker SIGKILL mid-request", "network 500", "network 429", "network timeout", "malformed JSON",
          "reply answer held (unknown outcome)", "reply 500"]
TEXTS = ["my order is late", "refund please!!", "the app keeps crashing", "thanks, all sorted",
         "worst service ever", "where is my parcel?", "love the new feature"]


class RoutedWatch(threading.Thread):
    """Samples the database: a customer message is routed once its routing marker
    (routing.UnroutedMessage, added with the message, deleted by routing) is gone.
    The time recorded is when that was seen (at most ~0.5 s late)."""

    def __init__(self, every: float = 0.5):
        super().__init__(daemon=True, name="routed-watch")
        self.every, self.routed_at, self._stop_event = every, {}, threading.Event()
        self._last_pk, self._waiting = 0, {}  # message pk -> external id

    def run(self):
        from django.db import connection

        try:
            while not self._stop_event.is_set():
                try:
                    self.sample()
                except Exception:  # noqa: BLE001 - a dropped connection: the next sample sees it
                    connection.close()
                self._stop_event.wait(self.every)
        finally:
            connection.close()

    def sample(self):
        from apps.inbox.models import Message
        from apps.routing.models import UnroutedMessage

        rows = list(Message.objects.filter(direction="in", pk__gt=self._last_pk).order_by("pk")
                    .values_list("pk", "external_id")[:20000])
        now = time.time()
        if rows:
            self._last_pk = rows[-1][0]
            self._waiting.update(rows)
        if not self._waiting:
            return
        unrouted = set(UnroutedMessage.objects.filter(message_id__in=list(self._waiting))
                       .values_list("message_id", flat=True))
        for pk in [pk for pk in self._waiting if pk not in unrouted]:
            self.routed_at.setdefault(self._waiting.pop(pk), now)

    def stop(self):
        if self.is_alive():
            self._stop_event.set()
            self.join(10)
            self.sample()  # a last look, in this thread


class WebServer:
    """gunicorn serving the project on 127.0.0.1, on the soak's database and Redis, in
    its own process group. One sync worker: a burst of deliveries keeps it busy, so
    the fault's SIGKILL lands on a request in flight (the arbiter starts a new one)."""

    def __init__(self, database_url: str, redis_url: str, *, log_dir: Path, workers: int = 1):
        from tests.reliability.procs import free_port

        self.port, self.workers, self.log_path = free_port(), workers, log_dir / "gunicorn.log"
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "cxinbox.settings.test",
                    "DATABASE_URL": database_url + "?application_name=cx-web", "REDIS_URL": redis_url}
        self.proc = None

    def start(self):
        import subprocess

        import requests

        from tests.reliability.procs import wait_for

        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "cxinbox.wsgi:application", "-b", f"127.0.0.1:{self.port}",
             "-w", str(self.workers), "--timeout", "30", "--graceful-timeout", "5"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

        def up():
            assert self.proc.poll() is None, self.log_path.read_text(errors="replace")[-3000:]
            try:
                return requests.get(f"{self.base_url}/login/", timeout=2).status_code < 500
            except requests.RequestException:
                return False

        wait_for(up, 60, interval=0.3, what="gunicorn up")
        return self

    def worker_pids(self) -> list[int]:
        from tests.reliability.procs import children_of

        return children_of(self.proc.pid) if self.proc and self.proc.poll() is None else []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except Exception:  # noqa: BLE001
                os.killpg(self.proc.pid, signal.SIGKILL)


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _percentile(values: list[float], q: float):
    if not values:
        return None
    k = max(0, min(len(values) - 1, int(round(q / 100 * len(values) + 0.5)) - 1))
    return round(values[k], 1)


def _now():
    from django.utils import timezone

    return timezone.now()


def _seconds(n):
    import datetime as dt

    return dt.timedelta(seconds=n)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=5.0, help="new mentions per second")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2 pool processes each)")
    parser.add_argument("--fault-every", type=float, default=8.0, help="mean seconds between faults")
    parser.add_argument("--reply-every", type=float, default=1.5, help="seconds between agent replies")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--database-url", default=os.environ.get(
        "SOAK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cxinbox_soak"))
    parser.add_argument("--json", default="", help="write the figures here too")
    parser.add_argument("--routed-p99-seconds", type=float, default=120.0,
                        help="fail if any path's p99 arrival -> routed latency is above this")
    args = parser.parse_args(argv)
    redis = _setup(args)
    soak = Soak(args, redis)
    print(f"soak: {args.minutes} min, {args.rate}/s, {args.workers} workers, a fault every ~{args.fault_every}s; "
          f"worker logs in {soak.log_dir}", flush=True)
    try:
        soak.run()
        soak.drain()
        figures = soak.check()
    finally:
        soak.stop()
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    print("OK: every mention stored exactly once and routed in time, no reply posted twice" if figures["ok"]
          else "FAILED")
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
