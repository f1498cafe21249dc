"""Shared helpers for the benchmarks: environment, databases, machine state, percentiles."""
from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
BENCH_DB = os.environ.get("BENCH_DB", "cx_bench")
BIG_DB = os.environ.get("BENCH_BIG_DB", "cx_bench_big")
PG_BASE = PG_ADMIN_URL.rsplit("/", 1)[0]
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
SCALE = os.environ.get("BENCH_SCALE", "full")  # full | small


def db_url(name: str) -> str:
    return f"{PG_BASE}/{name}"


def bench_env(db: str = BENCH_DB, **extra) -> dict:
    """Environment for Django/Celery processes of the benchmark: production-like
    (DEBUG off: no query log), PostgreSQL + Redis."""
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "cxinbox.settings.base",
        "DATABASE_URL": db_url(db),
        "REDIS_URL": REDIS_URL,
        "DEBUG": "False",
        "LOG_LEVEL": "WARNING",
        "CELERY_TASK_ALWAYS_EAGER": "False",
        "API_THROTTLE_ANON_RATE": "", "API_THROTTLE_USER_RATE": "",  # measure, do not throttle
        "PYTHONPATH": str(ROOT),
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def django_setup(db: str = BENCH_DB) -> None:
    """Point this process at the bench database, then set Django up."""
    os.environ.update(bench_env(db))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
        return
    # Already set up by an earlier part (make bench runs them in one process): settings
    # read DATABASE_URL once, so point the connection at this part's database.
    from django.conf import settings
    from django.db import connections

    connections.close_all()
    settings.DATABASES["default"]["NAME"] = db
    connections["default"].settings_dict["NAME"] = db


def production_workers() -> list[tuple[str, str, int, str]]:
    """The Celery workers Procfile.production runs, as (name, queues, processes, nice): each line
    running `nice -n ${X_NICE:-n} ... celery ... worker -Q <queues> -c ${X_CONCURRENCY:-n}`, at its
    default size and the niceness its variable (else its default) gives."""
    import re

    workers = []
    for line in (ROOT / "Procfile.production").read_text().splitlines():
        name, _, command = line.partition(":")
        found = re.search(r"celery -A cxinbox worker -Q (\S+) -c (?:\$\{\w+:-(\d+)\}|(\d+))", command)
        if found and not line.startswith("#"):
            nice = re.search(r"nice -n \$\{(\w+):-(\d+)\}", command)
            workers.append((name.strip(), found.group(1), int(found.group(2) or found.group(3)),
                            os.environ.get(nice.group(1), nice.group(2)) if nice else "0"))
    return workers


def workers_ready(names: list[str], where: str = "", timeout: float = 120) -> None:
    """Until every Celery worker named answers a ping: consuming, its text models loaded and its
    pool forked. A fixed 5 s was not enough (the models take 4-9 s): the first seconds of a run
    went to workers that were not up yet, ~7 s of arrival -> routed for the first deliveries."""
    from celery import Celery

    app = Celery(broker=REDIS_URL)  # the deployment's broker: no Django settings needed here
    waiting, end = set(names), time.time() + timeout
    while waiting and time.time() < end:
        for reply in app.control.ping(destination=list(waiting), timeout=1.0):
            waiting -= set(reply)
    if waiting:
        raise RuntimeError(f"workers not ready: {sorted(waiting)} ({where})")


@contextlib.contextmanager
def autovacuum_on():
    """PostgreSQL as a deployment runs it: autovacuum (and its ANALYZE) on. A server with it off
    (this box's is) keeps every dead row of a run and plans on statistics of the empty tables the
    run started from; turned on for the run (ALTER SYSTEM, reloaded) and put back after."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        was = conn.execute("show autovacuum").fetchone()[0]
        if was == "on":
            yield "on"
            return
        conn.execute("alter system set autovacuum = on")
        conn.execute("select pg_reload_conf()")
        try:
            yield "on for the run (the server's setting: off)"
        finally:
            conn.execute("alter system reset autovacuum")
            conn.execute("select pg_reload_conf()")


def pg_admin(sql: str, db_url_: str = PG_ADMIN_URL) -> None:
    import psycopg

    with psycopg.connect(db_url_, autocommit=True) as conn:
        conn.execute(sql)


def db_exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        return conn.execute("select 1 from pg_database where datname=%s", [name]).fetchone() is not None


def db_recreate(name: str) -> None:
    pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    pg_admin(f'CREATE DATABASE "{name}"')


def migrate(db: str) -> float:
    t = time.perf_counter()
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=bench_env(db), check=True)
    return time.perf_counter() - t


def machine() -> dict:
    """nproc, memory, load: the figures are only meaningful beside them."""
    mem = Path("/proc/meminfo").read_text().split("\n")
    total = next(int(x.split()[1]) for x in mem if x.startswith("MemTotal"))
    cpu = next((x.split(":", 1)[1].strip() for x in Path("/proc/cpuinfo").read_text().split("\n")
                if x.startswith("model name")), "?")
    pg = subprocess.run(["psql", PG_ADMIN_URL, "-Atc", "show server_version; "], capture_output=True, text=True)
    return {"nproc": os.cpu_count(), "mem_gib": round(total / 1024 / 1024, 1), "cpu": cpu,
            "postgres": pg.stdout.strip(), "python": sys.version.split()[0]}


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class CpuMeter:
    """Whole-machine CPU busy share over an interval, from /proc/stat."""

    @staticmethod
    def _read():
        parts = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = parts[3] + parts[4]
        return sum(parts), idle

    def __enter__(self):
        self.start = self._read()
        return self

    def __exit__(self, *exc):
        self.end = self._read()

    @property
    def busy(self) -> float:
        total = self.end[0] - self.start[0]
        idle = self.end[1] - self.start[1]
        return 0.0 if total <= 0 else (total - idle) / total


def pct(values, p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary_ms(values) -> dict:
    return {"n": len(values), "p50": pct(values, 50) * 1000, "p95": pct(values, 95) * 1000,
            "p99": pct(values, 99) * 1000, "mean": statistics.fmean(values) * 1000 if values else float("nan")}


def log(*args) -> None:
    print(time.strftime("%H:%M:%S"), *args, flush=True)
