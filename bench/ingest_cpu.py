"""Where ingest's time goes, end to end: CPU per mention and lock waiting.

`python -m bench.ingest_cpu` (env: N=3000 mentions, WORKERS=1,2,4, BATCH=100, WAITS=1 to list
the lock waits, SAMPLE=0 for CPU and rate only). Like bench.ingest's throughput, but the worker is started and
ready first, then the mentions are queued in tasks of 100; between the first task
and the last routed row it reads, from /proc, the CPU of the worker processes
(parent and pool) and of their PostgreSQL backends, and samples pg_stat_activity
every 20 ms: how many of the worker's backends wait on a lock, run, or sit idle in
a transaction. CPU seconds move less than mentions/s with other work on the machine.
Recreates BENCH_DB."""
from __future__ import annotations

import collections
import os
import threading
import time

from . import ingest
from .common import BENCH_DB, db_recreate, db_url, django_setup, load, log, migrate

WAITS = collections.Counter()
TICK = os.sysconf("SC_CLK_TCK")
BATCH = int(os.environ.get("BATCH", "100"))  # mentions per task
# SAMPLE=0: no pg_stat_activity sampling (it costs PostgreSQL CPU of its own): CPU and rate only
SAMPLE = os.environ.get("SAMPLE", "1") != "0"


def _proc_cpu(pid: int) -> float:
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _pids(match) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if match(int(name)):
                    out.append(int(name))
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
    return out


def _snapshot(worker_pid: int, exclude_backend: int) -> tuple[dict, dict]:
    """CPU seconds of the worker (parent + pool children) and of the bench database's backends."""
    def child(pid):
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1]) == worker_pid

    def backend(pid):
        cmd = open(f"/proc/{pid}/cmdline").read()
        return pid != exclude_backend and cmd.startswith("postgres:") and f" {BENCH_DB} " in cmd

    workers = [worker_pid, *_pids(child)]
    return {p: _proc_cpu(p) for p in workers}, {p: _proc_cpu(p) for p in _pids(backend)}


def _delta(before: dict, after: dict) -> float:
    return sum(v - before.get(p, 0.0) for p, v in after.items())


ACTIVITY = ("select state, wait_event_type from pg_stat_activity where datname = %s "
            "and pid <> pg_backend_pid() and pid <> %s and backend_type = 'client backend'")
BLOCKED = ("select left(regexp_replace(a.query, '\\s+', ' ', 'g'), 70), "
           "(select left(regexp_replace(b.query, '\\s+', ' ', 'g'), 70) from pg_stat_activity b "
           " where b.pid = (pg_blocking_pids(a.pid))[1]) "
           "from pg_stat_activity a where a.datname = %s and a.wait_event_type = 'Lock'")


def run(*, workers: int, n: int, account) -> dict:
    import psycopg
    from django.db import connection
    from django.db.models import Max, Min

    from apps.inbox.models import Conversation, Message
    from apps.ingest.tasks import mentions_ingest_task

    from .mentions import make_mentions

    ingest.reset_inbox()
    ingest.purge()
    with connection.cursor() as cur:
        cur.execute("select pg_backend_pid()")
        mine = cur.fetchone()[0]
    mentions = make_mentions(n, f"c{workers}-{int(time.time())}")
    worker = ingest.Worker(workers)
    worker.wait_ready()
    time.sleep(1)
    samples = {"lock": 0, "active": 0, "idle_tx": 0, "n": 0}
    stop = threading.Event()

    def sampler():
        with psycopg.connect(db_url(BENCH_DB), autocommit=True) as conn:
            while not stop.is_set():
                for state, wait_type in conn.execute(ACTIVITY, [BENCH_DB, mine]).fetchall():
                    if wait_type == "Lock":
                        samples["lock"] += 1
                    elif state == "active":
                        samples["active"] += 1
                    elif state == "idle in transaction":
                        samples["idle_tx"] += 1
                for waiting, blocker in conn.execute(BLOCKED, [BENCH_DB]).fetchall():
                    WAITS[(waiting, blocker)] += 1
                samples["n"] += 1
                stop.wait(0.02)

    thread = threading.Thread(target=sampler, daemon=True)
    cpu_before, pg_before = _snapshot(worker.proc.pid, mine)
    load_before = load()
    for i in range(0, n, BATCH):
        mentions_ingest_task.apply_async(args=[account.pk, mentions[i:i + BATCH]])
    if SAMPLE:
        thread.start()
    t0 = time.time()
    try:
        while time.time() - t0 < max(120, n / 20):
            if ingest.all_routed(account.pk, n):
                break
            time.sleep(0.5)
        cpu_after, pg_after = _snapshot(worker.proc.pid, mine)
    finally:
        stop.set()
        if SAMPLE:
            thread.join()
        worker.stop()
    msgs = Message.objects.filter(channel_account=account).aggregate(first=Min("created_at"), last=Max("updated_at"))
    conv_last = Conversation.objects.filter(channel_account=account).aggregate(last=Max("updated_at"))["last"]
    seconds = (max(msgs["last"], conv_last) - msgs["first"]).total_seconds()
    per_sample = {k: v / max(1, samples["n"]) for k, v in samples.items() if k != "n"}
    return {"workers": workers, "mentions": n, "rate": n / seconds,
            "worker_cpu_ms": 1e3 * _delta(cpu_before, cpu_after) / n, "pg_cpu_ms": 1e3 * _delta(pg_before, pg_after) / n, "backends": per_sample, "load": load_before}


def main() -> None:
    n = int(os.environ.get("N", "3000"))
    worker_counts = [int(x) for x in os.environ.get("WORKERS", "1,2,4").split(",")]
    db_recreate(BENCH_DB)
    migrate(BENCH_DB)
    django_setup(BENCH_DB)
    fx = ingest.setup_fixtures()
    for workers in worker_counts:
        r = run(workers=workers, n=n, account=fx["account"])
        b = r["backends"]
        log(f"{workers} processes: {r['rate']:.0f} mentions/s, CPU per mention: worker {r['worker_cpu_ms']:.2f} ms, "
            f"PostgreSQL {r['pg_cpu_ms']:.2f} ms; backends (mean of samples): waiting on a lock {b['lock']:.2f}, "
            f"running {b['active']:.2f}, idle in transaction {b['idle_tx']:.2f}; load {r['load']} -> {load()}")
    if os.environ.get("WAITS"):
        for (waiting, blocker), count in WAITS.most_common(12):
            print(f"{count:5d} waiting: {waiting} | blocked by: {blocker}")


if __name__ == "__main__":
    main()
