"""Push over HTTP, measured from the edge: what X's Account Activity webhook meets.

A small deployment on this box, as docs/operations.md runs it: the production web tier
(gunicorn with deploy/gunicorn.conf.py: uvicorn workers serving cxinbox.asgi, production
settings), the Celery workers of Procfile.production (one per queue group: ingest of 2
processes, routing, outbound, and reports + default, each of 1) and beat, on PostgreSQL and
Redis. A separate process (bench/edge_sender.py) sends signed deliveries of one tweet each
at a steady rate, open loop; an observer here reads the database every 100 ms and notes
when each tweet is stored and when it is routed (its routing marker gone: language,
sentiment, rules, priority, SLA, queue and agent committed). The sender, the observer, the
web tier, the workers and PostgreSQL share the 2 cores, as a real small deployment does.

Beside the figures, the limits measured in the same run: the web tier alone (no worker
running) taking deliveries as fast as it can, and PostgreSQL's raw rate of one-row
INSERT transactions into the delivery table."""
from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import tempfile
import threading
import time

from .common import (PY, REDIS_URL, ROOT, CpuMeter, autovacuum_on, bench_env, db_recreate, db_url, django_setup, load,
                     log, migrate, pct, production_workers, workers_ready)

DB = os.environ.get("BENCH_EDGE_DB", "cx_bench_edge")
SECRET = "bench-consumer-secret"
FOR_USER = "783214"
QUEUES = "ingest,routing,outbound,reports,default"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Deployment:
    """The web tier, the workers and beat, started as Procfile.production starts them."""

    def __init__(self, key: str, tmp: str):
        self.port = _free_port()
        self.tmp = tmp
        self.env = bench_env(DB, DJANGO_SETTINGS_MODULE="cxinbox.settings.production",
                             SECRET_KEY="bench-edge-" + "k" * 40, FIELD_ENCRYPTION_KEYS=key,
                             ALLOWED_HOSTS="127.0.0.1,localhost", WEB_BIND=f"127.0.0.1:{self.port}",
                             STATIC_ROOT=os.path.join(tmp, "static"), LOG_LEVEL="WARNING")
        for k in ("DB_POOL_MAX_SIZE", "WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR"):
            self.env.pop(k, None)
        self.procs: dict[str, subprocess.Popen] = {}

    def _start(self, name: str, cmd: list[str]) -> None:
        out = open(os.path.join(self.tmp, f"{name}.log"), "a")
        self.procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def web_start(self) -> None:
        self._start("web", [PY, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "cxinbox.asgi:application"])
        # ready when the workers answer (the master listens before they have loaded the app: a send
        # started then waits on them, and the first seconds of a run measured the boot)
        end = time.time() + 120
        while time.time() < end:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    if s.recv(16).startswith(b"HTTP/1.1 "):
                        time.sleep(3)  # one worker answered; the others booted beside it
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"web tier did not start: {self.tmp}/web.log")

    def worker_start(self) -> None:
        # The workers Procfile.production runs (one per queue group: the reports applier never takes
        # an ingest process), at the CPU priority it gives each (WORKER_NICE, 10; REPORTS_NICE, 19).
        # BENCH_WORKERS=single: one worker of 2 processes on every queue instead (the layout of the
        # figures before 2026-12-07).
        layout = ([("worker", QUEUES, 2, os.environ.get("WORKER_NICE", "10"))]
                  if os.environ.get("BENCH_WORKERS") == "single" else production_workers())
        for name, queues, processes, nice in layout:
            self._start(f"worker-{name}", ["nice", "-n", nice, PY, "-m", "celery", "-A", "cxinbox", "worker",
                                           "-Q", queues, "-c", str(processes),
                                           "-n", f"edge-{name}-{os.getpid()}@localhost",
                                           "-l", os.environ.get("BENCH_CELERY_LOG", "WARNING")])
        self._start("beat", [PY, "-m", "celery", "-A", "cxinbox", "beat", "-l", "WARNING",
                             "-s", os.path.join(self.tmp, "beat-schedule")])
        workers_ready([f"edge-{name}-{os.getpid()}@localhost" for name, *_ in layout], self.tmp)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds so far of each process this deployment started, with its children
        (gunicorn's and Celery's forked workers)."""
        from .live_load import children, cpu_seconds

        return {name: sum(cpu_seconds(pid) for pid in [proc.pid, *children(proc.pid)])
                for name, proc in self.procs.items()}

    def stop(self, *names: str) -> None:
        for name in names or list(self.procs):
            proc = self.procs.pop(name, None)
            if proc is None:
                continue
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _fixtures(key: str) -> int:
    """The inbox of bench/ingest.py (a team of online agents, a default queue with
    auto-assignment, 20,000 mentions of history) and an X account that verifies with SECRET."""
    from django.conf import settings

    from apps.connectors.models import ChannelAccount

    from .ingest import reset_inbox, setup_fixtures

    settings.FIELD_ENCRYPTION_KEYS = [key]  # the deployment's key: it decrypts what this process writes
    fx = setup_fixtures()
    account = ChannelAccount.objects.get(pk=fx["account"].pk)
    account.credentials = {"bearer_token": "b", "consumer_key": "ck", "consumer_secret": SECRET,
                           "access_token": "at", "access_token_secret": "ats"}
    account.external_user_id = FOR_USER
    account.save()
    reset_inbox()
    return account.pk


class Observer:
    """Every 100 ms: the messages stored on the account since the last look (a window of
    ids behind the newest seen, for commits out of id order), and which of the stored
    ones still have their routing marker. Times are this process's clock, as the sender's."""

    def __init__(self, account_id: int):
        import psycopg

        self.conn = psycopg.connect(db_url(DB), autocommit=True)
        self.account_id = account_id
        self.stored: dict[str, float] = {}
        self.routed: dict[str, float] = {}
        self.waiting: dict[int, str] = {}  # message id -> tweet id, stored and not routed yet
        self.low = self.conn.execute("select coalesce(max(id), 0) from inbox_message").fetchone()[0]
        self.poll_ms: list[float] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.time()
            # By the primary key alone (the account and direction checked here): with the account in the
            # WHERE, a planner on stale statistics walked the account's index through every message it
            # had (29 ms a look after 2 minutes at 200/s, growing: a fifth of a core of PostgreSQL's, taken
            # from what it measures)
            rows = self.conn.execute(
                "select id, external_id, channel_account_id, direction from inbox_message where id > %s order by id",
                [self.low]).fetchall()
            now = time.time()
            for mid, ext, account, direction in rows:
                if account != self.account_id or direction != "in":
                    continue
                if ext not in self.stored:
                    self.stored[ext] = now
                    self.waiting[mid] = ext
            if rows:
                self.low = max(self.low, rows[-1][0] - 2000)
            if self.waiting:
                marked = {r[0] for r in self.conn.execute(
                    "select message_id from routing_unroutedmessage where message_id = any(%s)",
                    [list(self.waiting)]).fetchall()}
                now = time.time()
                for mid in [m for m in self.waiting if m not in marked]:
                    self.routed[self.waiting.pop(mid)] = now
            self.poll_ms.append((time.time() - t) * 1000)
            self._stop.wait(max(0.0, 0.1 - (time.time() - t)))

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.conn.close()


def _send(port: int, account_id: int, rate: float, seconds: float, base_id: int) -> dict:
    job = {"host": "127.0.0.1", "port": port, "path": f"/hooks/twitter/{account_id}/", "rate": rate,
           "n": int(rate * seconds), "base_id": base_id, "for_user": FOR_USER, "secret": SECRET, "timeout": 30.0}
    out = subprocess.run([PY, "-m", "bench.edge_sender"], cwd=ROOT, input=json.dumps(job), capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout)


def _run_rate(dep: Deployment, account_id: int, rate: float, seconds: float, *, drain: float = 60,
              worker: bool = True) -> dict:
    base_id = int(time.time() * 1000) * 1000
    obs = Observer(account_id) if worker else None
    from .live_load import service_cpu, service_cpu_delta

    load_before = load()
    split_before = (dep.cpu_seconds(), service_cpu(None), resource.getrusage(resource.RUSAGE_CHILDREN),
                    time.process_time(), time.time())
    with CpuMeter() as cpu:
        sent = _send(dep.port, account_id, rate, seconds, base_id)
    # where the 2 cores went over the sending: each process of the deployment, PostgreSQL and
    # Redis, the sender (a child this process waited for) and the observer (this process)
    procs, services, sender, me, t0 = split_before
    elapsed = time.time() - t0
    after = dep.cpu_seconds()
    sender_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    split = {name: (after[name] - procs.get(name, 0.0)) / elapsed for name in after}
    split.update({name: cpu_s / elapsed for name, cpu_s in service_cpu_delta(services, service_cpu(None)).items()})
    split["sender"] = (sender_after.ru_utime + sender_after.ru_stime - sender.ru_utime - sender.ru_stime) / elapsed
    split["observer"] = (time.process_time() - me) / elapsed
    rows = sent["results"]
    ok = [r for r in rows if 200 <= r[4] < 300]
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[str(r[4])] = statuses.get(str(r[4]), 0) + 1
    first_due = min(r[1] for r in rows)
    last_done = max(r[3] for r in rows)
    res = {"rate": rate, "seconds": seconds, "sent": len(rows), "accepted": len(ok), "statuses": statuses,
           "connections": sent["connections"], "throughput": len(ok) / (last_done - first_due),
           "achieved_send_rate": len(rows) / (max(r[2] for r in rows) - first_due),
           "http_ms": {"p50": pct([r[3] - r[1] for r in ok], 50) * 1000,
                       "p99": pct([r[3] - r[1] for r in ok], 99) * 1000,
                       "p50_from_write": pct([r[3] - r[2] for r in ok], 50) * 1000},
           "cpu_busy": cpu.busy, "cpu_cores": {k: round(v, 3) for k, v in split.items()}, "load": load_before,
           "worker": worker}
    if obs is None:
        return res
    end = time.time() + drain
    accepted = {r[0]: r[1] for r in ok}
    while time.time() < end and not all(k in obs.routed for k in accepted):
        time.sleep(0.2)
    obs.stop()
    routed = [obs.routed[k] - due for k, due in accepted.items() if k in obs.routed]
    stored = [obs.stored[k] - due for k, due in accepted.items() if k in obs.stored]
    res.update({"stored": len(stored), "routed": len(routed),
                "lost": sum(1 for k in accepted if k not in obs.stored),
                "stored_ms": {"p50": pct(stored, 50) * 1000, "p99": pct(stored, 99) * 1000},
                "routed_ms": {"p50": pct(routed, 50) * 1000, "p99": pct(routed, 99) * 1000,
                              "max": max(routed, default=float("nan")) * 1000},
                "observer_poll_ms": pct(obs.poll_ms, 50)})
    return res


def insert_limit(seconds: float = 5, threads: int = 16) -> dict:
    """PostgreSQL alone: one-row INSERT transactions into the delivery table (a one-tweet
    delivery's JSON), from `threads` connections at once, committed like the webhook's."""
    import psycopg
    from django.db import connection

    from apps.connectors.models import ChannelAccount, PushDelivery

    from .mentions import make_mentions

    account = ChannelAccount.objects.first()
    obj = PushDelivery(account=account, mentions=make_mentions(1, "lim"))
    fields = [f for f in PushDelivery._meta.concrete_fields if not f.primary_key]
    cols = ", ".join(f.column for f in fields)
    values = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    sql = (f"insert into {PushDelivery._meta.db_table} ({cols}) values ({', '.join(['%s'] * len(fields))})")
    counts = [0] * threads
    stop = time.time() + seconds

    def run(i: int) -> None:
        with psycopg.connect(db_url(DB), autocommit=True) as conn:
            while time.time() < stop:
                conn.execute(sql, values)
                counts[i] += 1

    load_before = load()
    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    with psycopg.connect(db_url(DB), autocommit=True) as conn:
        conn.execute(f"delete from {PushDelivery._meta.db_table} where status = 'pending'")
    return {"threads": threads, "rows": sum(counts), "rate": sum(counts) / seconds, "load": load_before}


def edge_push_bench(runs: list[tuple[float, float]], web_alone: tuple[float, float] = (2000, 10)) -> dict:
    with autovacuum_on() as autovacuum:
        res = _edge_push_bench(runs, web_alone)
    res["autovacuum"] = autovacuum
    return res


def _edge_push_bench(runs: list[tuple[float, float]], web_alone: tuple[float, float]) -> dict:
    from cryptography.fernet import Fernet

    log("edge: fresh database", DB)
    db_recreate(DB)
    migrate(DB)
    django_setup(DB)
    key = Fernet.generate_key().decode()
    account_id = _fixtures(key)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    res: dict = {"runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        if os.environ.get("BENCH_KEEP_LOGS"):
            tmp = tempfile.mkdtemp(prefix="edge-logs-")
            log("logs kept in", tmp)
        dep = Deployment(key, tmp)
        try:
            dep.web_start()
            dep.worker_start()  # returns once every worker answers
            time.sleep(2)  # beat's first due tasks
            for rate, seconds in runs:
                r = _run_rate(dep, account_id, rate, seconds)
                res["runs"].append(r)
                log(f"edge push {rate:.0f}/s x {seconds:.0f} s: accepted {r['accepted']}/{r['sent']} "
                    f"{r['statuses']}, {r['throughput']:.0f}/s, HTTP p50/p99 {r['http_ms']['p50']:.0f}/"
                    f"{r['http_ms']['p99']:.0f} ms, routed {r['routed']} p50/p99 {r['routed_ms']['p50']:.0f}/"
                    f"{r['routed_ms']['p99']:.0f} ms, lost {r['lost']}, CPU {r['cpu_busy']:.0%}")
                log("  cores: " + ", ".join(f"{k} {v:.2f}" for k, v in r["cpu_cores"].items()))
            dep.stop(*[name for name in dep.procs if name.startswith("worker")], "beat")
            r = _run_rate(dep, account_id, web_alone[0], web_alone[1], worker=False)
            res["web_alone"] = r
            log(f"web tier alone at {web_alone[0]:.0f}/s: accepted {r['accepted']}/{r['sent']} {r['statuses']}, "
                f"{r['throughput']:.0f}/s, HTTP p50/p99 {r['http_ms']['p50']:.0f}/{r['http_ms']['p99']:.0f} ms")
        finally:
            dep.stop()
            res["logs_tail"] = {name[:-4]: _tail(os.path.join(tmp, name)) for name in os.listdir(tmp)
                                if name.startswith(("web", "worker")) and name.endswith(".log")}
    res["insert_limit"] = insert_limit()
    log(f"raw one-row INSERT transactions into the delivery table: {res['insert_limit']['rate']:,.0f}/s")
    return res


def _tail(path: str, lines: int = 15) -> list[str]:
    try:
        with open(path) as f:
            return f.read().splitlines()[-lines:]
    except OSError:
        return []


if __name__ == "__main__":
    import sys

    spec = sys.argv[1:] or ["100:20", "200:20", "500:20", "1000:20"]
    out = edge_push_bench([tuple(float(x) for x in s.split(":")) for s in spec])
    print(json.dumps(out, indent=1, default=str))
