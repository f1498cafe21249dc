"""`make bench`: runs every benchmark on PostgreSQL + Redis and writes bench/RESULTS.md.

Environment (all optional):
  BENCH_SCALE=small        ~5 min instead of ~30 (fewer mentions, 50k conversations)
  BENCH_PARTS=ingest,inbox,reports,peer,live,edge   which parts to run (default: all)
  BENCH_REGENERATE=1       rebuild the big data set even if it exists
  BENCH_DROP_BIG=1         drop the big databases at the end (they are kept for reruns)
  BENCH_PG_ADMIN_URL       postgres://postgres@127.0.0.1:5432/postgres
  BENCH_REDIS_URL          redis://127.0.0.1:6379/7 (a Redis DB of its own: the bench purges its queues)
  BENCH_DB / BENCH_BIG_DB  cx_bench / cx_bench_big (cx_bench_small at BENCH_SCALE=small)
  BENCH_INGEST_HISTORY     20000: mentions of history in the inbox before each ingest run
  BENCH_HELPDESK_VENV      /tmp/helpdesk-venv (the peer, django-helpdesk, in a venv of its own)
  BENCH_LIVE_DB, BENCH_LIVE_PORT   cx_live_bench, 18110: the live part's deployment (bench/live_inbox.py)
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import traceback

from . import common
from .common import BENCH_DB, ROOT, SCALE, db_exists, db_recreate, django_setup, load, log, machine, migrate

SMALL = SCALE == "small"
BIG_DB = common.BIG_DB if not SMALL or "BENCH_BIG_DB" in os.environ else "cx_bench_small"
P = {
    "ingest_n": 1500 if SMALL else 6000,
    # how mentions reach the workers: ingest.mentions tasks of 100 (a poll's page) and of 500 (a poll
    # that fetched 5 pages; POLL_MAX_PAGES allows 10), and one-mention push deliveries, which the
    # delivery tasks take PUSH_INGEST_BATCH at a time
    "ingest_runs": [("tasks", 100), ("tasks", 500), ("push", 0)],
    "stage_batches": [100, 500],
    # sustained: a longer run at 2 processes, whose tables grow through it as a busy day's do (a
    # 6,000-mention run lasts ~2-3 s: a burst)
    "sustained_n": 5000 if SMALL else 30_000,
    "sustained_runs": [("tasks", 500), ("push", 0), ("tasks", 100)],
    "ab_n": 500 if SMALL else 2000,
    "workers": [1, 2, 4],
    "copy_rows": 50_000 if SMALL else 200_000,
    "noop_n": 3000 if SMALL else 10_000,
    "latency_seconds": 10 if SMALL else 30,
    "latency_rate": 200,
    "conversations": 50_000 if SMALL else 1_000_000,
    "history_conversations": 50_000 if SMALL else 1_000_000,
    "requests": 20 if SMALL else 60,
    # the live inbox under a team (bench/live_inbox.py): 200 agents on the websocket, 100 mentions/s
    "live_seconds": 30 if SMALL else 120,
    # push over HTTP from the edge (bench/edge_push.py): (deliveries/s, seconds), open loop; 200/s for 5 minutes
    "edge_runs": [(100, 15), (200, 30), (500, 15), (1000, 15)] if SMALL else [(100, 30), (200, 300), (500, 60),
                                                                                (1000, 30)],
}
ALL_PARTS = {"ingest", "inbox", "reports", "peer", "live", "edge"}
PARTS = set(os.environ.get("BENCH_PARTS", ",".join(sorted(ALL_PARTS))).split(","))
# A partial run (BENCH_PARTS) keeps the other parts' figures from the last run, marked as such.
KEYS = {"ingest": ("ingest_ab", "stages", "copy", "noop", "ingest", "ingest_history", "ingest_sustained", "latency"),
        "inbox": ("generate", "inbox"), "reports": ("reports",),
        "peer": ("peer",), "live": ("live",), "edge": ("edge",)}
OUT = ROOT / "bench" / "RESULTS.md"
RAW = ROOT / "bench" / "results.json"


def part_ingest(res: dict) -> None:
    from . import ingest

    log("ingest: fresh database", BENCH_DB)
    db_recreate(BENCH_DB)
    migrate(BENCH_DB)
    django_setup(BENCH_DB)
    fx = ingest.setup_fixtures()
    from .ab_ingest import ingest_ab

    res["ingest_ab"] = ingest_ab(account=fx["account"], n=P["ab_n"])
    for r in res["ingest_ab"]:
        log(f"ingest service alone, {r['what']}: {r['rate']:,.0f} mentions/s, {r['queries']:.1f} queries/mention")
    res["stages"] = []
    for batch in P["stage_batches"]:
        st = ingest.cpu_stages(account=fx["account"], n=P["ab_n"], batch=batch)
        res["stages"].append(st)
        log(f"CPU per mention, one process, batches of {batch}: Python {st['python_ms']:.2f} ms (scoring "
            f"{st['scoring_ms']:.2f}, storing {st['storing_ms']:.2f}, routing {st['routing_ms']:.2f}), "
            f"waiting on PostgreSQL {st['waiting_ms']:.2f}")
    res["copy"] = ingest.copy_limit(P["copy_rows"])
    log("COPY limit", f"{res['copy']['rate']:,.0f} rows/s")
    res["noop"] = []
    for w in P["workers"]:
        r = ingest.noop_limit(workers=w, n=P["noop_n"])
        res["noop"].append(r)
        log(f"no-op tasks, {w} processes: {r['rate']:,.0f}/s")
    res["ingest_history"] = ingest.HISTORY
    res["ingest"] = []
    for via, batch in P["ingest_runs"]:
        for w in P["workers"]:
            r = ingest.ingest_throughput(workers=w, n=P["ingest_n"], batch=batch, account=fx["account"], via=via)
            res["ingest"].append(r)
            log(f"ingest via {via} ({r['batch']} a task), {w} processes: {r['rate']:,.1f} mentions/s "
                f"({r['scored']}/{r['mentions']} routed)")
    res["ingest_sustained"] = []
    for via, batch in P["sustained_runs"]:
        r = ingest.ingest_throughput(workers=2, n=P["sustained_n"], batch=batch, account=fx["account"], via=via)
        res["ingest_sustained"].append(r)
        log(f"sustained, via {via} ({r['batch']} a task), 2 processes, {r['mentions']:,} mentions: "
            f"{r['rate']:,.1f} mentions/s")
    best = max((r["rate"] for r in res["ingest"] if r["rate"] == r["rate"]), default=0)
    res["latency"] = []
    rates = [P["latency_rate"]]
    if best and best * 0.5 < P["latency_rate"]:
        rates.append(max(5, round(best * 0.5)))  # and at half the measured capacity
    for rate in rates:
        r = ingest.ingest_latency(rate=rate, seconds=P["latency_seconds"], workers=2, account=fx["account"],
                                  admin=fx["admin"])
        res["latency"].append(r)
        log(f"latency at {rate}/s: p50 {r['routed_ms']['p50']:.0f} ms p99 {r['routed_ms']['p99']:.0f} ms")


def part_inbox(res: dict) -> None:
    from .generate import generate

    regen = os.environ.get("BENCH_REGENERATE") == "1" or not db_exists(BIG_DB)
    if regen:
        log(f"generating {P['conversations']:,} conversations into {BIG_DB} (COPY)")
        res["generate"] = generate(db=BIG_DB, conversations=P["conversations"], messages_per=5.0)
        _meta_store(BIG_DB, "generate", res["generate"])
        log("generated", json.dumps(res["generate"]["seconds"]))
    else:
        res["generate"] = _meta_load(BIG_DB, "generate")
        log(f"reusing {BIG_DB} (BENCH_REGENERATE=1 to rebuild); migrating it to this commit")
        migrate(BIG_DB)
    django_setup(BIG_DB)
    from .inbox import inbox_bench

    res["inbox"] = inbox_bench(n=P["requests"], threads=P["requests"])
    for r in res["inbox"]:
        log(f"{r['who']:10} {r['what']:44} p50 {r['p50']:6.1f} p95 {r['p95']:6.1f} ms, {r['queries']} queries")


def part_reports(res: dict) -> None:
    if "inbox" not in PARTS:  # run alone on a kept data set: bring it to this commit (e.g. week slices, 0009)
        log(f"migrating {BIG_DB} to this commit")
        migrate(BIG_DB)
    django_setup(BIG_DB)
    from .reports import reports_bench

    res["reports"] = reports_bench(db=BIG_DB, history_conversations=P["history_conversations"],
                                   requests=P["requests"])


def part_peer(res: dict) -> None:
    from .peer import peer_bench

    res["peer"] = peer_bench(tickets=P["conversations"], requests=P["requests"])


def part_live(res: dict) -> None:
    from .live_inbox import live_bench, summary_lines

    res["live"] = live_bench(seconds=P["live_seconds"])
    for line in summary_lines(res["live"]):
        log("live:", line)


def part_edge(res: dict) -> None:
    from .edge_push import edge_push_bench

    res["edge"] = edge_push_bench(P["edge_runs"])


def _meta_store(db: str, key: str, value: dict) -> None:
    import psycopg

    with psycopg.connect(common.db_url(db), autocommit=True) as conn:
        conn.execute("create table if not exists bench_meta (key text primary key, value jsonb)")
        conn.execute("insert into bench_meta values (%s, %s) on conflict (key) do update set value = excluded.value",
                     [key, json.dumps(value, default=str)])


def _meta_load(db: str, key: str) -> dict | None:
    import psycopg

    with psycopg.connect(common.db_url(db), autocommit=True) as conn:
        try:
            row = conn.execute("select value from bench_meta where key = %s", [key]).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return row[0] if row else None


def main() -> None:
    started = time.time()
    previous = json.loads(RAW.read_text()) if RAW.exists() and PARTS != ALL_PARTS else {}
    res: dict = {"machine": machine(), "scale": SCALE, "params": P, "load_start": load(),
                 "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                 "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                          text=True).stdout.strip(), "errors": {}}
    log("machine", res["machine"], "load", res["load_start"])
    for name, fn in (("ingest", part_ingest), ("inbox", part_inbox), ("reports", part_reports), ("peer", part_peer),
                     ("live", part_live), ("edge", part_edge)):
        if name not in PARTS:
            continue
        try:
            fn(res)
        except Exception as exc:  # noqa: BLE001 - one part failing still reports the others
            traceback.print_exc()
            res["errors"][name] = f"{type(exc).__name__}: {exc}"
    for name in ALL_PARTS - PARTS:
        for key in KEYS[name]:
            if key in previous:
                res[key] = previous[key]
        if any(k in previous for k in KEYS[name]):
            res.setdefault("carried", {})[name] = previous.get("parts_run_at", {}).get(name, previous.get("started"))
    res["parts_run_at"] = {**previous.get("parts_run_at", {}), **{p: res["started"] for p in PARTS}}
    if os.environ.get("BENCH_DROP_BIG") == "1":
        for db in (BIG_DB, "cx_bench_helpdesk"):
            common.pg_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    res["load_end"] = load()
    res["seconds"] = time.time() - started
    RAW.write_text(json.dumps(res, indent=1, default=str))
    from .report import write_results

    OUT.write_text(write_results(res))
    log(f"wrote {OUT} in {res['seconds'] / 60:.1f} min")


if __name__ == "__main__":
    sys.exit(main())
