"""Turns bench/results.json into bench/RESULTS.md."""
from __future__ import annotations


def _ingest_row(r: dict) -> str:
    return (f"| {_handed(r)} | {r['workers']} | {r['mentions']:,} | {_f(r['seconds'], '{:.1f}')} | "
            f"**{_f(r['rate'], '{:,.1f}')}** | {r['conversations']:,} | {r['routed']:,} | "
            f"{r['assigned']:,} | {r['cpu_busy']:.0%} | {r['load']} |")


def _handed(r: dict) -> str:
    if r.get("via") == "push":
        return f"push deliveries of 1 (taken {r['batch']} a task)"
    return f"tasks of {r.get('batch', 100)}"


def _f(value, fmt="{:,.0f}"):
    try:
        if value != value:  # NaN
            return "n/a"
        return fmt.format(value)
    except (TypeError, ValueError):
        return "n/a"


MATRIX_FILTERS = ("", "team", "channel", "queue", "agent")


def _matrix_lines(rows: list[dict]) -> list[str]:
    """The cold matrix (issue 19) folded: the worst p95 over the zones per report x
    period x filter, the zone it was in, and pass/fail against the period's target."""
    from .reports import MATRIX_TARGET_MS

    zones = sorted({r["tz"] for r in rows})
    values = {r["filter"]: r["value"] for r in rows if r["filter"]}
    lines = ["### Cold, every zone and filter (issue 19)", "",
             f"Report API as a supervisor, report cache off, one untimed request then a few timed ones per "
             f"combination (one when a request took over 2 s); zones {', '.join(zones)}; filters "
             + ", ".join(f"{k}={v}" for k, v in values.items()) + " (the busiest of each over the last 30 days). "
             "Each cell: the worst p95 in ms over the zones (the zone that gave it). Target p95: "
             + ", ".join(f"{d} days {t} ms" for d, t in MATRIX_TARGET_MS.items()) + ".", "",
             "| report | days | " + " | ".join(f or "unfiltered" for f in MATRIX_FILTERS) + " | worst | target |",
             "|---|---|" + "---|" * (len(MATRIX_FILTERS) + 2)]
    cells: dict = {}
    for r in rows:
        key = (r["report"], r["days"])
        p95 = r["p95"] if r.get("status") == 200 else float("inf")
        best = cells.setdefault(key, {}).get(r["filter"])
        if best is None or not p95 <= best[0]:
            cells[key][r["filter"]] = (p95, r["tz"])
    failed = []
    for (name, days), by_filter in cells.items():
        target = MATRIX_TARGET_MS.get(days, 200)
        worst = max(by_filter.values(), key=lambda c: c[0])
        ok = worst[0] <= target
        if not ok:
            failed += [f"{name} {days}d {f or 'unfiltered'} ({c[1]})" for f, c in by_filter.items()
                       if not c[0] <= target]
        lines.append(f"| {name} | {days} | " + " | ".join(
            f"{_f(by_filter[f][0])} ({by_filter[f][1].split('/')[-1]})" if f in by_filter else "n/a"
            for f in MATRIX_FILTERS) + f" | **{_f(worst[0])}** | {target} {'pass' if ok else '**fail**'} |")
    overall = max(((c[0], n, d, f, c[1]) for (n, d), bf in cells.items() for f, c in bf.items()),
                  default=None, key=lambda c: c[0])
    lines.append("")
    if overall:
        lines.append(f"Overall worst: {_f(overall[0])} ms ({overall[1]}, {overall[2]} days, "
                     f"{overall[3] or 'unfiltered'}, {overall[4]}). "
                     + ("Every combination meets its target." if not failed else
                        f"{len(failed)} of {len(rows)} combinations miss it: " + "; ".join(failed[:20])
                        + ("..." if len(failed) > 20 else "") + "."))
        lines.append("")
    return lines


def _live_workers(r: dict) -> str:
    """The Celery side of a live run as it ran: Procfile.production's workers (from the fourth
    session of 2026-12-07) or, in runs before that and with BENCH_WORKERS=single, one worker on
    every queue."""
    workers = r.get("workers")
    if not workers:
        return "one Celery worker (2 processes, every queue)"
    if len(workers) == 1:
        w = workers[0]
        return f"one Celery worker ({w['processes']} processes, every queue, nice {w['nice']}), no beat"
    return ("the Celery workers of `Procfile.production` ("
            + ", ".join(f"{w['name']} of {w['processes']} at nice {w['nice']}" for w in workers)
            + "; each in a session of its own) and beat")


def _live_lines(r: dict) -> list[str]:
    """The live inbox under a team (bench/live_inbox.py, issue 19)."""
    t, m, rs, cpu = r["targets"], r["memory"], r["restart"], r["cpu"]
    agents = r["teams"] * r["agents_per_team"]
    return [
        f"## The live inbox under a team (targets: arrival -> the right sockets p99 <= {t['socket_p99_ms']} ms, "
        f"list page p95 <= {t['list_p95_ms']} ms, {t['wrong_team_events']} events to another team)", "",
        f"A small deployment on this box: the web tier as shipped (gunicorn + uvicorn workers of "
        f"`deploy/gunicorn.conf.py`, production settings), {_live_workers(r)}, PostgreSQL "
        f"(autovacuum {r.get('autovacuum', 'as the server has it')}), Redis. {r['teams']} teams of "
        f"{r['agents_per_team']} agents, each team with its queue and its "
        f"X account (a rule routes the account to the queue, round robin); the load from another process "
        f"(`bench/live_load.py`): {agents} agents on `ws/inbox/`, each GETting the list page every "
        f"{r['list_every']} s (staggered), and signed X Account Activity deliveries (one new customer's tweet "
        f"each) POSTed to `/hooks/twitter/<account>/` at {r['rate']:g}/s open loop for {r['seconds']:g} s, "
        f"round robin over the accounts. Arrival = the POST; on a socket = the first frame naming the "
        f"conversation (the routing push: agents are not told of unrouted work).", "",
        "| figure | value |", "|---|---|",
        f"| mentions sent / accepted / stored / left unrouted | {r['mentions_sent']:,} "
        f"({_f(r['achieved_rate'], '{:.1f}')}/s) / {r['mentions_accepted']:,} / {r['stored']:,} / {r['unrouted']:,} |",
        f"| webhook answer p50 / p99 ms | {_f(r['hook_ms']['p50'])} / {_f(r['hook_ms']['p99'])} |",
        f"| arrival -> each right socket p50 / p99 ms ({r['socket_ms']['n']:,} deliveries, "
        f"{r['socket_missing']:,} missing) | **{_f(r['socket_ms']['p50'])} / {_f(r['socket_ms']['p99'])}** |",
        f"| arrival -> the whole team has it, p50 / p99 ms | {_f(r['whole_team_ms']['p50'])} / "
        f"{_f(r['whole_team_ms']['p99'])} |",
        f"| events on a socket of another team | **{r['wrong_team_events']}** (of {r['frames']:,} frames) |",
        f"| list page p50 / p95 ms ({r['list_ms']['n']:,} pages, {r['list_errors']} errors) | "
        f"{_f(r['list_ms']['p50'])} / **{_f(r['list_ms']['p95'])}** |",
        *([f"| list refetches the pages' own live.js would add (counted from each socket's frames, not sent): "
           f"a gap of 2 s (before) / widening to 10 s / widening to 30 s (now) | "
           f"{_f(r['refetch_per_s'].get('every_2s'), '{:.1f}')}/s / "
           # "widening": the 10-s rule's name in the runs before the 30-s cap
           f"{_f(r['refetch_per_s'].get('to_10s', r['refetch_per_s'].get('widening')), '{:.1f}')}/s / "
           f"**{_f(r['refetch_per_s'].get('to_30s'), '{:.1f}')}/s** |"] if r.get("refetch_per_s") else []),
        f"| web workers' memory, before -> after {agents} sockets | {m['before']['rss_kib'] / 1024:,.0f} -> "
        f"{m['after']['rss_kib'] / 1024:,.0f} MiB RSS ({m['before']['workers']} workers): "
        f"**{_f(m['per_socket_kib'])} KiB a socket** (PSS {_f(m['per_socket_pss_kib'])}); "
        f"{m['loaded']['rss_kib'] / 1024:,.0f} MiB after the run |",
        f"| graceful restart (SIGHUP): every socket back | **{_f(rs['all_back_seconds'], '{:.1f}')} s** "
        f"({rs['reconnected']}/{rs['sockets']}, p50 {_f(rs['reconnect_p50_s'], '{:.1f}')} s; close codes "
        f"{', '.join(rs['close_codes'])}; {rs['handshake_failures']} failed handshakes retried) |",
        f"| CPU over the run | machine {cpu['machine_busy']:.0%} busy of {r.get('cores', 2)} cores; web workers "
        f"{cpu['web_workers_cpu_s'] / cpu['seconds']:.2f} cores, Celery "
        f"{cpu.get('celery_cpu_s', float('nan')) / cpu['seconds']:.2f}"
        + (" (" + ", ".join(f"{name} {v / cpu['seconds']:.2f}" for name, v in cpu["celery_split_cpu_s"].items()) + ")"
           if cpu.get("celery_split_cpu_s") else "")
        + ", PostgreSQL "
        f"{cpu.get('postgres_cpu_s', float('nan')) / cpu['seconds']:.2f}, Redis "
        f"{cpu.get('postgres_cpu_s', float('nan')) / cpu['seconds']:.2f}, Redis "
        f"{cpu.get('redis-server_cpu_s', float('nan')) / cpu['seconds']:.2f}, load generator "
        f"{cpu['load_generator_cpu_s'] / cpu['seconds']:.2f}; load {r['load']} |",
        "",
    ]


def _edge_lines(r: dict) -> list[str]:
    """Push over HTTP from the edge (bench/edge_push.py, issue 19)."""
    lines = ["## Push over HTTP, from the edge (targets: >= 1,000 deliveries/s accepted, 0 lost, 0 errors; "
             "arrival -> routed p99 <= 1 s at 200/s for 5 min, <= 2 s at 500/s)", "",
             "A small deployment on this box: the production web tier (gunicorn + uvicorn workers of "
             "`deploy/gunicorn.conf.py`, production settings), the Celery workers of `Procfile.production` (ingest "
             "of 2 processes, routing, outbound, reports + default; each at its niceness, held across sessions) "
             f"and beat, PostgreSQL (autovacuum {r.get('autovacuum', 'as the server has it')}) and Redis, started "
             "once every worker answers a ping. A separate process sends signed X Account Activity deliveries (one tweet "
             "each: 60% a new customer, 25% a reply in the customer's thread, 15% a returning customer) to "
             "`/hooks/twitter/<account>/` at a steady rate, open loop (a late answer never slows the offered "
             "rate; HTTP latency timed from each delivery's due time). An observer reads the database every "
             "100 ms: stored (the message row) and routed (its routing marker gone: queue, priority, SLA and "
             "agent committed). Sender, observer, web tier, worker and PostgreSQL share the 2 cores.", "",
             "| offered/s x s | accepted | errors | accepted/s | HTTP p50 / p99 ms | stored p50 / p99 ms | "
             "routed p50 / p99 ms | lost | CPU busy | load |", "|---|---|---|---|---|---|---|---|---|---|"]
    for x in r.get("runs", []):
        errors = sum(n for status, n in x["statuses"].items() if not status.startswith("2"))
        lines.append(
            f"| {x['rate']:,.0f} x {x['seconds']:.0f} | {x['accepted']:,}/{x['sent']:,} | {errors} | "
            f"**{x['throughput']:,.0f}** | {x['http_ms']['p50']:,.0f} / {x['http_ms']['p99']:,.0f} | "
            f"{x['stored_ms']['p50']:,.0f} / {x['stored_ms']['p99']:,.0f} | "
            f"**{x['routed_ms']['p50']:,.0f} / {x['routed_ms']['p99']:,.0f}** | {x['lost']} | "
            f"{x['cpu_busy']:.0%} | {x['load']} |")
    lines.append("")
    split = [x for x in r.get("runs", []) if x.get("cpu_cores")]
    if split:
        lines.append("Where the cores went while sending (CPU seconds a second): "
                     + "; ".join(f"{x['rate']:,.0f}/s: " + ", ".join(f"{k} {v:.2f}" for k, v in x["cpu_cores"].items()
                                                                     if v >= 0.005) for x in split) + ".")
        lines.append("")
    alone, ins = r.get("web_alone"), r.get("insert_limit")
    if alone or ins:
        lines.append("The limits beside it, same run:")
        if alone:
            lines.append(f"- The web tier alone (no worker running), offered {alone['rate']:,.0f}/s for "
                         f"{alone['seconds']:.0f} s: **{alone['throughput']:,.0f} deliveries/s** accepted "
                         f"({alone['accepted']:,}/{alone['sent']:,}; statuses {alone['statuses']}), HTTP p50 / p99 "
                         f"{alone['http_ms']['p50']:,.0f} / {alone['http_ms']['p99']:,.0f} ms, CPU busy "
                         f"{alone['cpu_busy']:.0%}.")
        if ins:
            lines.append(f"- PostgreSQL alone: one-row INSERT transactions into the delivery table from "
                         f"{ins['threads']} connections: **{ins['rate']:,.0f}/s**.")
        lines.append("")
    return lines


def write_results(res: dict) -> str:
    m = res["machine"]
    lines = [
        "# cxinbox benchmark results",
        "",
        f"Written by `make bench` (`python -m bench.run`), scale **{res['scale']}**, commit `{res.get('commit')}`, "
        f"started {res['started']}, took {res['seconds'] / 60:.1f} min.",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem_gib']} GiB RAM, PostgreSQL {m['postgres']} (stock "
        f"settings), Redis on 127.0.0.1, Python {m['python']}. Load average (1/5/15 min) at start "
        f"{res['load_start']}, at end {res['load_end']}; every figure below carries the load when it was taken. "
        "Web figures are server time through Django's full stack in-process (no network, no gunicorn).",
        "",
    ]
    if res.get("carried"):
        lines += ["Parts not rerun in this run (figures from an earlier run, at the time given): "
                  + ", ".join(f"{k} ({v})" for k, v in res["carried"].items()) + ".", ""]
    if res.get("errors"):
        lines += ["**Parts that failed:** " + "; ".join(f"{k}: {v}" for k, v in res["errors"].items()), ""]

    if "ingest" in res:
        lines += ["## Ingest (target >= 2,000 mentions/s on 2 cores)", "",
                  "Real `celery worker` (prefork, N processes, queues ingest+routing) on Redis; timed from the "
                  "first stored row until every message is stored, threaded, scored (language + VADER) and "
                  "routed (rules, priority, SLA, assignment). Mix: 60% new customers, 25% replies in a thread, "
                  "15% returning. Each run starts from an inbox holding "
                  f"{res.get('ingest_history', 0):,} mentions of history (closed conversations on another "
                  "account, planner statistics current), as a working inbox does. How the mentions reach the "
                  "workers: `ingest.mentions` tasks of 100 (one page of a poll) or of 500 (a poll that "
                  "fetched 5 pages; a poll takes up to 10), or one push delivery per mention as the webhook "
                  "keeps them, which the delivery tasks take up to PUSH_INGEST_BATCH at a time, a task queueing "
                  "the next as soon as it takes a full batch.", "",
                  "| handed over as | worker processes | mentions | seconds | mentions/s | conversations | routed "
                  "| assigned | CPU busy | load |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["ingest"]:
            lines.append(_ingest_row(r))
        lines.append("")
        if res.get("ingest_sustained"):
            n = res["ingest_sustained"][0]["mentions"]
            lines += [f"### Sustained: {n:,} mentions, 2 worker processes", "",
                      "The same runs, longer: the tables grow through the run as a busy day's do, and a run of "
                      "6,000 mentions lasts 2-3 s, a burst.", "",
                      "| handed over as | worker processes | mentions | seconds | mentions/s | conversations | "
                      "routed | assigned | CPU busy | load |", "|---|---|---|---|---|---|---|---|---|---|"]
            lines += [_ingest_row(r) for r in res["ingest_sustained"]]
            lines.append("")
    if res.get("ingest_ab"):
        lines += ["### The ingest service alone, before and after batching", "",
                  "`mentions_ingest` on the same mentions in batches of 100, routing and live pushes stubbed "
                  "out, one process: the foundation's per-mention path (savepoint, identity upsert, three "
                  "threading lookups, row inserts per mention) against the set-based batch path.", "",
                  "| version | mentions/s | CPU ms/mention (Python) | wall ms/mention | SQL statements/mention "
                  "| load |", "|---|---|---|---|---|---|"]
        for r in res["ingest_ab"]:
            lines.append(f"| {r['what']} | **{r['rate']:,.0f}** | {r['cpu_ms']:.2f} | {r['wall_ms']:.2f} | "
                         f"{r['queries']:.2f} | {r['load']} |")
        lines.append("")
    stages = res.get("stages")
    stages = [stages] if isinstance(stages, dict) else (stages or [])
    if stages:
        lines += ["### Where the CPU goes (the floor)", "",
                  f"Ingest end to end in one process, as a worker runs it ({stages[0]['mentions']:,} mentions, "
                  "each batch routed in place after its commit), Python CPU by stage. Waiting = wall "
                  "minus Python CPU: PostgreSQL's work and the round trips. 2 cores give 2,000 ms of CPU a second, "
                  "so 2,000 mentions/s needs about 1 ms per mention on both sides together; what a batch costs "
                  "whatever its size is the difference between the rows.", "",
                  "| batch | Python ms/mention | scoring (language + sentiment) | threading + storing | routing "
                  "| waiting on PostgreSQL | one process, mentions/s | load |", "|---|---|---|---|---|---|---|---|"]
        for st in stages:
            lines.append(f"| {st['batch']} | **{st['python_ms']:.2f}** | {st['scoring_ms']:.2f} | "
                         f"{st['storing_ms']:.2f} | {st['routing_ms']:.2f} | {st['waiting_ms']:.2f} | "
                         f"{st['rate']:,.0f} | {st['load']} |")
        lines.append("")
    if "copy" in res or "noop" in res:
        lines += ["### The limits beside it (same run, same PostgreSQL and Redis)", ""]
        c = res.get("copy")
        if c:
            lines.append(f"- Raw PostgreSQL COPY into a table shaped like `inbox_message` (same columns and "
                         f"indexes): **{_f(c['rate'])} rows/s** ({c['rows']:,} rows, load {c['load']}).")
        for r in res.get("noop", []):
            lines.append(f"- No-op Celery tasks, {r['workers']} worker processes: **{_f(r['rate'])} tasks/s** "
                         f"({r['done']:,}/{r['tasks']:,}, load {r['load']}).")
        if c and res.get("ingest"):
            lines += ["", "| handed over as | worker processes | ingest mentions/s | share of COPY rows/s "
                      "| ingest tasks/s (at most this many mentions each, routed in the task) "
                      "| share of no-op task rate |", "|---|---|---|---|---|---|"]
            noop = {r["workers"]: r["rate"] for r in res.get("noop", [])}
            for r in res["ingest"]:
                tasks = r["rate"] / r.get("batch", 100) if r["rate"] == r["rate"] else float("nan")
                lines.append(f"| {_handed(r)} | {r['workers']} | {_f(r['rate'], '{:,.1f}')} | "
                             f"{_f(r['rate'] / c['rate'], '{:.2%}')} | {_f(tasks, '{:,.1f}')} | "
                             f"{_f(tasks / noop.get(r['workers'], float('nan')), '{:.2%}')} |")
        lines.append("")
    if res.get("latency"):
        lines += ["## Latency: mention arriving -> visible in the inbox API (target p99 <= 1 s at 200/s)", "",
                  "Each mention is its own push delivery, sent at a steady rate for the stated seconds from "
                  "two sender processes through the webhook's path after its signature check "
                  "(`push_delivery_accept`: the delivery kept in PostgreSQL, then an ingest task, one waiting "
                  "per account); an admin client polls `GET /api/v1/conversations/` every 100 ms "
                  "(resolution +-100 ms: the rows whose message is no older than the oldest mention not listed yet, "
                  "then the whole `unassigned` view, which holds what waits for routing) and notes when each conversation is listed (stored) "
                  "and when it has its queue and agent (routed: language, sentiment, rules, priority, SLA, queue "
                  "and assignee, set in one transaction). 2 worker processes.", "",
                  "| offered rate/s | achieved send rate/s | mentions | listed | routed | stored p50 / p99 ms "
                  "| routed p50 / p99 ms | API poll p50 ms | CPU busy | load |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["latency"]:
            s, t = r["stored_ms"], r["routed_ms"]
            lines.append(f"| {r['rate']} | {r['achieved_rate']:.0f} | {r['mentions']:,} | {r['visible']:,} | "
                         f"{r['routed']:,} | {_f(s['p50'])} / {_f(s['p99'])} | **{_f(t['p50'])} / {_f(t['p99'])}** "
                         f"| {_f(r['api_poll_ms']['p50'])} | {r['cpu_busy']:.0%} | {r['load']} |")
        lines.append("")
    g = res.get("generate")
    if res.get("inbox"):
        first = res["inbox"][0]
        lines += ["## Inbox at scale (target p95 <= 50 ms list, <= 100 ms thread)", "",
                  f"Data: {first['conversations']:,} conversations, {first['messages']:,} messages"
                  + (f", {g['customers']:,} customers, {g['events']:,} audit events, {g['size']} on disk; "
                     f"generated with COPY in {g['seconds']['total']:.0f} s "
                     f"({', '.join(f'{k} {v:.0f} s' for k, v in g['seconds'].items() if k != 'total')})"
                     if g else "") + ". 50 rows a page. Lists: the same URL repeated; threads: a different "
                  "conversation each request.", "",
                  "| who | what | p50 ms | p95 ms | mean ms | queries | bytes |", "|---|---|---|---|---|---|---|"]
        for r in res["inbox"]:
            lines.append(f"| {r['who']} | {r['what']} | {r['p50']:.1f} | **{r['p95']:.1f}** | {r['mean']:.1f} | "
                         f"{r['queries']} | {r['bytes']:,} |")
        lines.append("")
    rep = res.get("reports")
    if rep:
        lines += ["## Reports (target p95 <= 200 ms)", "", rep.get("note", ""), "",
                  "| report | p50 ms | p95 ms | queries |", "|---|---|---|---|"]
        for r in rep.get("rows", []):
            lines.append(f"| {r['what']} | {r['p50']:.1f} | **{r['p95']:.1f}** | {r['queries']} |")
        lines.append("")
    if rep and rep.get("matrix"):
        lines += _matrix_lines(rep["matrix"])
    if res.get("edge"):
        lines += _edge_lines(res["edge"])
    if res.get("live"):
        lines += _live_lines(res["live"])
    peer = res.get("peer")
    if peer:
        lines += ["## Peer: django-helpdesk on the same number of tickets", "", peer.get("note", ""), "",
                  "| what | p50 ms | p95 ms | queries |", "|---|---|---|---|"]
        for r in peer.get("rows", []):
            lines.append(f"| {r['what']} | {r['p50']:.1f} | **{r['p95']:.1f}** | {r.get('queries', 'n/a')} |")
        lines.append("")
    lines += ["Raw figures: `bench/results.json`. How to run, what each figure means and the current design: "
              "`docs/performance.md`; the profiles behind the fixes: `docs/performance-history.md`.", ""]
    return "\n".join(lines)
