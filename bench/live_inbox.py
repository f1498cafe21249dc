"""The live inbox under a team (issue 19): a real small deployment on this box, as
Procfile.production runs it: the web tier (gunicorn + uvicorn workers of
deploy/gunicorn.conf.py, production settings, cxinbox.asgi) on a local port, the Celery
workers of Procfile.production (ingest of 2 processes, routing, outbound, reports + default;
each in a session of its own at its niceness) and beat on Redis, PostgreSQL with autovacuum on
(turned on for the run if the server has it off). TEAMS teams of AGENTS agents, each team with
its queue and its X account (a routing rule sends each account's mentions to its team's queue,
round robin among the team's online agents).

The load comes from bench/live_load.py in a process of its own: every agent on the inbox
websocket and refreshing the list page every 30 s, mentions arriving as signed X Account
Activity deliveries at RATE/s. Measured: arrival (the POST) -> the event naming the
conversation on each of its team's sockets (p50/p99, and per mention until its whole team
has it), events that reached another team's agent (must be 0), the list page p50/p95 under
that load, the web workers' memory before and after the sockets connect, and a graceful
restart (SIGHUP) until every socket is back.

    python -m bench.live_inbox [--seconds 60] [--rate 100]    (make bench runs it as the part "live")
    python -m bench.live_inbox --send-refetches to_30s        (the pages also send live.js's refetches)

Environment: WORKER_NICE and REPORTS_NICE (Procfile.production's, 10 and 19), BENCH_WORKERS=single
(one worker of 2 processes on every queue, no beat: the layout of the live figures up to the third
session of 2026-12-07), BENCH_LIVE_DB (cx_live_bench), BENCH_LIVE_PORT (18110), BENCH_REDIS_URL (a
Redis DB of its own: flushed at start)."""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet

from .common import (PY, REDIS_URL, ROOT, autovacuum_on, db_recreate, db_url, load, log, migrate, pct,
                     production_workers, workers_ready)

LIVE_DB = os.environ.get("BENCH_LIVE_DB", "cx_live_bench")
PORT = int(os.environ.get("BENCH_LIVE_PORT", "18110"))
TEAMS, AGENTS = 4, 50
RATE = 100
LIST_EVERY = 30
LIST_PATH = "/inbox/"  # an agent's inbox: "all" open work of the team
TAIL_SECONDS = 10  # after the last mention, for its events
WORKER_QUEUES = "ingest,routing,outbound,reports,default"  # every queue production consumes
TARGETS = {"socket_p99_ms": 1000, "list_p95_ms": 100, "wrong_team_events": 0}


def server_env(tmp: Path) -> dict:
    """Production settings, as a deployment sets them (docs/operations.md, checklist)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "WEB_", "PYTEST_", "CELERY_")) and k not in ("DB_POOL_MAX_SIZE",)}
    env.update({
        "DJANGO_SETTINGS_MODULE": "cxinbox.settings.production",
        "SECRET_KEY": "live-bench-" + "k" * 40,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": db_url(LIVE_DB),
        "REDIS_URL": REDIS_URL,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "STATIC_ROOT": str(tmp / "static"),
        "LOG_LEVEL": "WARNING",
        "PORT": str(PORT),
        "PYTHONPATH": str(ROOT),
    })
    return env


# --- fixtures (run under the server's settings: the sessions are signed with its SECRET_KEY) ---
def fixtures_make(teams: int, agents: int) -> dict:
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore

    from apps.accounts.models import Team, User
    from apps.connectors.models import ChannelAccount
    from apps.inbox.models import Queue
    from apps.routing.models import RoutingRule

    password = make_password("live-bench-pass")  # hashed once: 200 PBKDF2 runs would be minutes of CPU
    plan = {"agents": [], "accounts": []}
    for k in range(teams):
        team = Team.objects.create(name=f"Live team {k}")
        queue = Queue.objects.create(name=f"Live queue {k}", team=team, assignment_mode="round_robin")
        user_id = str(7_100_000 + k)
        account = ChannelAccount.objects.create(
            provider="twitter", handle=f"@live{k}", name=f"Live {k}", external_user_id=user_id,
            credentials={"bearer_token": "b", "consumer_key": "ck", "consumer_secret": f"live-secret-{k}",
                         "access_token": "at", "access_token_secret": "ats"})
        rule = RoutingRule.objects.create(name=f"Account {k} to team {k}", position=k, set_queue=queue, stop=True)
        rule.channel_accounts.add(account)
        plan["accounts"].append({"id": account.pk, "user_id": user_id, "handle": f"live{k}", "team": team.pk,
                                 "consumer_secret": f"live-secret-{k}"})
        members = User.objects.bulk_create([
            User(username=f"live-{k}-{i}", first_name=f"Agent{i}", last_name=f"Team{k}", password=password,
                 role="agent", presence="online", capacity=100_000) for i in range(agents)])
        team.members.add(*members)
        for user in members:
            # what a login leaves in the session (django.contrib.auth.login), without its password hash
            session = SessionStore()
            session[SESSION_KEY] = str(user.pk)
            session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
            session[HASH_SESSION_KEY] = user.get_session_auth_hash()
            session.create()
            plan["agents"].append({"user_id": user.pk, "team": team.pk, "session": session.session_key})
    return plan


# --- the deployment -------------------------------------------------------------------------
def _wait_port(proc: subprocess.Popen, port: int, logfile: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"web tier did not start: {logfile.read_text()[-3000:]}")
            time.sleep(0.3)


def _stop(proc: subprocess.Popen) -> None:
    """The process and what it forked (its session: a Celery worker's pool, gunicorn's workers)."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(40)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _redis_flush() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()  # the bench's own DB: stale groups, queues, cache


def live_bench(**kwargs) -> dict:
    with autovacuum_on() as autovacuum:
        result = _live_bench(**kwargs)
    result["autovacuum"] = autovacuum
    return result


def _live_bench(*, seconds: float = 60, rate: float = RATE, teams: int = TEAMS, agents: int = AGENTS,
                send_refetches: str | None = None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="cx-live-"))
    env = server_env(tmp)
    log(f"live: fresh database {LIVE_DB}, {teams} teams x {agents} agents")
    db_recreate(LIVE_DB)
    migrate(LIVE_DB)
    _redis_flush()
    subprocess.run([PY, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    made = subprocess.run([PY, "-m", "bench.live_inbox", "--fixtures", str(teams), str(agents)], cwd=ROOT, env=env,
                          check=True, capture_output=True, text=True)
    plan = json.loads(made.stdout.strip().splitlines()[-1])
    plan.update({"db": LIVE_DB, "port": PORT, "rate": rate, "seconds": seconds, "list_every": LIST_EVERY,
                 "list_path": LIST_PATH, "tail_seconds": TAIL_SECONDS, "send_refetches": send_refetches})

    single = os.environ.get("BENCH_WORKERS") == "single"
    layout = ([("worker", WORKER_QUEUES, 2, os.environ.get("WORKER_NICE", "10"))] if single
              else production_workers())
    procs: dict[str, subprocess.Popen] = {}
    logs = ROOT / "bench"

    def start(name: str, cmd: list[str]) -> subprocess.Popen:
        # a session of its own, as honcho starts each Procfile line (the workers' niceness then
        # reaches their autogroup: cxinbox/cpu_priority.py)
        procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(logs / f".live-{name}.log", "w"),
                                       stderr=subprocess.STDOUT, start_new_session=True)
        return procs[name]

    try:
        for name, queues, processes, nice in layout:
            start(f"worker-{name}", ["nice", "-n", nice, PY, "-m", "celery", "-A", "cxinbox", "worker", "-Q", queues,
                                     "-c", str(processes), "-n", f"live-{name}-{os.getpid()}@%h", "-l", "WARNING",
                                     "--without-gossip", "--without-mingle"])
        if not single:
            start("beat", [PY, "-m", "celery", "-A", "cxinbox", "beat", "-l", "WARNING",
                           "-s", str(tmp / "beat-schedule")])
        web = start("web", [PY, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "cxinbox.asgi:application"])
        _wait_port(web, PORT, logs / ".live-web.log")
        workers_ready([f"live-{name}-{os.getpid()}@{socket.gethostname()}" for name, *_ in layout], str(logs))
        time.sleep(3)  # both web workers loaded the app
        plan["master_pid"] = web.pid
        plan["worker_pids"] = {name: proc.pid for name, proc in procs.items() if name != "web"}
        plan_file, out_file = tmp / "plan.json", tmp / "out.json"
        plan_file.write_text(json.dumps(plan))
        load_before = load()
        log(f"live: {len(plan['agents'])} sockets, {rate:g} mentions/s for {seconds:g} s, web on :{PORT}, "
            f"workers {', '.join(f'{n} ({q}, {c} x nice {nice})' for n, q, c, nice in layout)}"
            + ("" if single else " and beat"))
        subprocess.run([PY, "-m", "bench.live_load", str(plan_file), str(out_file)], cwd=ROOT, check=True,
                       timeout=seconds + 400)
        raw = json.loads(out_file.read_text())
    finally:
        for proc in procs.values():
            _stop(proc)
    result = analyse(plan, raw)
    result["workers"] = [{"name": n, "queues": q, "processes": c, "nice": nice} for n, q, c, nice in layout]
    result.update({"load": load_before, "cores": len(os.sched_getaffinity(0)), "teams": teams, "agents_per_team": agents, "rate": rate, "seconds": seconds,
                   "list_every": LIST_EVERY, "targets": TARGETS})
    return result


# --- the figures ------------------------------------------------------------------------------
def _mention_teams() -> dict[str, tuple[int, int | None]]:
    """tweet id -> (conversation id, its queue's team) as the run left them."""
    import psycopg

    with psycopg.connect(db_url(LIVE_DB)) as conn:
        rows = conn.execute(
            "SELECT m.external_id, c.id, q.team_id FROM inbox_message m JOIN inbox_conversation c "
            "ON c.id = m.conversation_id LEFT JOIN routing_queue q ON q.id = c.queue_id").fetchall()
    return {ext: (cid, team) for ext, cid, team in rows}


def _ms(values: list[float]) -> dict:
    return {"n": len(values), "p50": pct(values, 50) * 1000, "p95": pct(values, 95) * 1000,
            "p99": pct(values, 99) * 1000, "max": max(values) * 1000 if values else float("nan")}


def analyse(plan: dict, raw: dict) -> dict:
    stored = _mention_teams()
    conv_team = {cid: team for cid, team in stored.values()}
    team_agents: dict[int, list[int]] = {}
    for i, agent in enumerate(plan["agents"]):
        team_agents.setdefault(agent["team"], []).append(i)
    seen = [{int(k): v for k, v in s.items()} for s in raw["first_seen"]]

    per_socket, per_mention, missing, unrouted = [], [], 0, 0
    for tweet_id, (sent, _, status) in raw["sends"].items():
        if tweet_id not in stored:
            continue
        cid, team = stored[tweet_id]
        if team is None:
            unrouted += 1
            continue
        times = [seen[i][cid] - sent for i in team_agents.get(team, []) if cid in seen[i]]
        missing += len(team_agents.get(team, [])) - len(times)
        per_socket += times
        if len(times) == len(team_agents.get(team, [])):
            per_mention.append(max(times))
    wrong = sum(1 for i, agent in enumerate(plan["agents"]) for cid in seen[i]
                if conv_team.get(cid) != agent["team"])

    sends = list(raw["sends"].values())
    accepted = [s for s in sends if 200 <= s[2] < 300]
    window = raw["window"]
    lists_in_window = [s for at, s, status, what in raw["list_times"]
                       if what == "page" and status == 200 and window[0] <= at <= window[1]]
    rows_in_window = [s for at, s, status, what in raw["list_times"]
                      if what == "rows" and status == 200 and window[0] <= at <= window[1]]
    list_errors = sum(1 for _, _, status, _ in raw["list_times"] if status != 200)
    before, after = raw["memory_before"], raw["memory_after"]
    sockets = len(plan["agents"])
    return {
        "mentions_sent": len(sends), "mentions_accepted": len(accepted), "send_seconds": raw["sent_seconds"],
        "achieved_rate": len(sends) / raw["last_sent"] if raw.get("last_sent") else float("nan"),
        "web_threads": {"max": max(raw["web_threads"], default=0),
                        "p50": pct(raw["web_threads"], 50) if raw["web_threads"] else float("nan")},
        "hook_ms": _ms([s[1] for s in accepted]), "stored": len([t for t in raw["sends"] if t in stored]),
        "unrouted": unrouted,
        "socket_ms": _ms(per_socket), "whole_team_ms": _ms(per_mention), "socket_missing": missing,
        "wrong_team_events": wrong, "frames": sum(raw["frames"]),
        "list_ms": _ms(lists_in_window), "list_errors": list_errors,
        "refetches_sent": plan.get("send_refetches"), "rows_ms": _ms(rows_in_window),
        # the list refetches the pages' own live.js would add, per second (counted, not sent)
        "refetch_per_s": {name: n / (window[1] - window[0]) for name, n in raw.get("refetches", {}).items()},
        "connect_all_seconds": raw["connect_all_seconds"],
        "memory": {"before": {k: before[k] for k in ("workers", "rss_kib", "pss_kib")},
                   "after": {k: after[k] for k in ("workers", "rss_kib", "pss_kib")},
                   "loaded": {k: raw["memory_loaded"][k] for k in ("workers", "rss_kib", "pss_kib")},
                   "per_socket_kib": (after["rss_kib"] - before["rss_kib"]) / sockets,
                   "per_socket_pss_kib": (after["pss_kib"] - before["pss_kib"]) / sockets},
        "cpu": raw["cpu"], "restart": {k: v for k, v in raw["restart"].items() if k != "reconnect_seconds"}
        | {"reconnect_p50_s": pct(raw["restart"]["reconnect_seconds"], 50)},
    }


def summary_lines(r: dict) -> list[str]:
    m, rs = r["memory"], r["restart"]
    return [
        f"sent {r['mentions_sent']} ({r['achieved_rate']:.1f}/s, {r['mentions_accepted']} accepted, "
        f"{r['stored']} stored, {r['unrouted']} unrouted), webhook p50 {r['hook_ms']['p50']:.0f} ms "
        f"p99 {r['hook_ms']['p99']:.0f} ms",
        f"arrival -> socket p50 {r['socket_ms']['p50']:.0f} ms p99 {r['socket_ms']['p99']:.0f} ms "
        f"(n {r['socket_ms']['n']}, missing {r['socket_missing']}); whole team p99 {r['whole_team_ms']['p99']:.0f} ms",
        f"wrong-team events {r['wrong_team_events']}; frames {r['frames']}; web workers' threads p50 "
        f"{r['web_threads']['p50']:.0f} max {r['web_threads']['max']}",
        f"list page p50 {r['list_ms']['p50']:.0f} ms p95 {r['list_ms']['p95']:.0f} ms (n {r['list_ms']['n']}, "
        f"errors {r['list_errors']}); the pages' own refetches (live.js, not sent): "
        + ", ".join(f"{name} {n:.1f}/s" for name, n in r.get("refetch_per_s", {}).items())
        + (f"; sent ({r['refetches_sent']}): {r['rows_ms']['n']} rows refetches, p50 {r['rows_ms']['p50']:.0f} ms "
           f"p95 {r['rows_ms']['p95']:.0f} ms" if r.get("refetches_sent") else ""),
        f"memory: {m['before']['rss_kib'] / 1024:.0f} -> {m['after']['rss_kib'] / 1024:.0f} MiB RSS "
        f"({m['per_socket_kib']:.0f} KiB/socket, PSS {m['per_socket_pss_kib']:.0f}); loaded "
        f"{m['loaded']['rss_kib'] / 1024:.0f} MiB",
        f"restart: {rs['reconnected']}/{rs['sockets']} back, all in {rs['all_back_seconds']} s "
        f"(p50 {rs['reconnect_p50_s']:.1f} s), close codes {rs['close_codes']}, handshake failures "
        f"{rs['handshake_failures']}",
        f"CPU: machine {r['cpu']['machine_busy']:.0%} busy; web workers {r['cpu']['web_workers_cpu_s'] / r['cpu']['seconds']:.2f} "
        f"cores, Celery {r['cpu']['celery_cpu_s'] / r['cpu']['seconds']:.2f} ("
        + ", ".join(f"{name} {cpu / r['cpu']['seconds']:.2f}"
                    for name, cpu in r['cpu'].get('celery_split_cpu_s', {}).items())
        + "), PostgreSQL "
        f"{r['cpu'].get('postgres_cpu_s', float('nan')) / r['cpu']['seconds']:.2f}, Redis "
        f"{r['cpu'].get('redis-server_cpu_s', float('nan')) / r['cpu']['seconds']:.2f}, load generator {r['cpu']['load_generator_cpu_s'] / r['cpu']['seconds']:.2f} cores",
    ]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--fixtures":
        print(json.dumps(fixtures_make(int(sys.argv[2]), int(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=RATE)
    parser.add_argument("--teams", type=int, default=TEAMS)
    parser.add_argument("--agents", type=int, default=AGENTS)
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--send-refetches", choices=["to_30s", "to_10s", "every_2s"],
                        help="the pages also send their live.js rows refetches, by this rule")
    args = parser.parse_args()
    result = live_bench(seconds=args.seconds, rate=args.rate, teams=args.teams, agents=args.agents,
                        send_refetches=args.send_refetches)
    for line in summary_lines(result):
        log(line)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
