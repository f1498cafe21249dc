"""The load generator of the live-inbox benchmark (bench/live_inbox.py), in a process of its
own, as a team's browsers and X would be: no Django, only asyncio, `websockets` and raw HTTP/1.1.

    python -m bench.live_load <plan.json> <out.json>

The plan names the server, the agents (user id, team, session cookie) and the X accounts (id,
user id, consumer secret). In order:
1. every agent opens the inbox websocket (`/ws/inbox/`, its session cookie) and waits for "hello";
   the web workers' memory is read before and after;
2. each agent GETs the list page (`/inbox/`) every `list_every` s, staggered, for the whole run (with
   the plan's `send_refetches`, while mentions arrive, also the rows refetch its live.js would send on
   its socket's frames; otherwise those are only counted);
3. mentions arrive open loop at `rate`/s for `seconds`: each one a signed X Account Activity
   delivery (one tweet, a new customer) POSTed to `/hooks/twitter/<account>/`, round robin over
   the accounts; every frame each socket receives is noted (first time per conversation);
4. the gunicorn master gets SIGHUP (a deploy's graceful restart): the sockets are closed (1012)
   and reconnect as static/js/live.js does (1 s, doubling to 30 s, back to 1 s once open; on
   open the list page refetches its rows), timed until all are back.
What is kept goes to out.json; bench/live_inbox.py joins it with the database."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

RECONNECT_FIRST, RECONNECT_MAX = 1.0, 30.0  # static/js/live.js: backoff = 1000, doubled up to 30000 ms
LIST_REFRESH_DEBOUNCE = 0.0  # live.js refreshList(): the rows refetch at once when the socket opens (after quiet)
# live.js refreshList(): at once after a quiet gap, then at most every 2 s, the gap doubling up to 30 s
# once LIST_BUSY_BEFORE_WIDENING refetches in a row had to wait ("to_30s"); before: every 2 s however
# long they kept coming; "to_10s": a cap of 10 s (tried first)
LIST_BUSY_BEFORE_WIDENING = 5
REFETCH_RULES = {"to_30s": (2.0, 30.0), "to_10s": (2.0, 10.0), "every_2s": (2.0, 2.0)}


class RefetchRule:
    """When a list page on live.js would refetch its rows, from the times its socket's frames
    arrive. Counted, not sent: the run's page load stays the list GET every `list_every` s,
    and the count says what the pages' own refetches would add (docs/performance-history.md)."""

    def __init__(self, every: float, most: float):
        self.every, self.most = every, most
        self.gap, self.last, self.due = every, float("-inf"), None
        self.busy = 0
        self.times: list[float] = []

    def change(self, now: float) -> None:
        if self.due is not None and now >= self.due:
            self._fire(self.due)
        if self.due is not None:
            return  # a refetch is due: it shows this change too
        since = now - self.last
        if since >= self.gap:
            self.gap, self.busy = self.every, 0
            self._fire(now)
        else:
            self.due = self.last + self.gap
            self.busy += 1
            if self.busy >= LIST_BUSY_BEFORE_WIDENING:
                self.gap = min(self.gap * 2, self.most)

    def until(self, end: float) -> None:
        if self.due is not None and self.due <= end:
            self._fire(self.due)

    def _fire(self, at: float) -> None:
        self.times.append(at)
        self.last, self.due = at, None


class PageRefetch:
    """live.js refreshList() as a page runs it, sending the rows refetch (htmx GET) when it fires:
    for a run that measures what the pages' own refetches cost (plan "send_refetches")."""

    def __init__(self, every: float, most: float, send):
        self.every, self.most, self.send = every, most, send
        self.gap, self.last, self.timer = every, float("-inf"), None
        self.busy = 0

    def change(self, now: float) -> None:
        if self.timer is not None:
            return
        since, wait = now - self.last, 0.0
        if since >= self.gap:
            self.gap, self.busy = self.every, 0
        else:
            wait = self.gap - since
            self.busy += 1
            if self.busy >= LIST_BUSY_BEFORE_WIDENING:
                self.gap = min(self.gap * 2, self.most)
        self.timer = asyncio.get_running_loop().call_later(wait, self._fire)

    def _fire(self) -> None:
        self.timer, self.last = None, time.time()
        self.send()


# --- machine figures ---------------------------------------------------------------------
def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def memory_kib(pid: int) -> dict:
    """RSS and PSS (the forked workers share pages with the master: PSS splits them)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                out[key.lower()] = int(rest.split()[0])
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def threads(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def service_cpu(db: str | None) -> dict[str, dict[int, float]]:
    """CPU seconds per pid of Redis and of PostgreSQL's backends on the run's database (others'
    databases on a shared box are not this run's: their backends name their database too)."""
    found: dict[str, dict[int, float]] = {"postgres": {}, "redis-server": {}}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                name = (entry / "comm").read_text().strip()
                if name not in found:
                    continue
                if name == "postgres" and db and f" {db} " not in (entry / "cmdline").read_text().replace("\0", " "):
                    continue
            except OSError:
                continue
            found[name][int(entry.name)] = cpu_seconds(int(entry.name))
    return found


def service_cpu_delta(before: dict, after: dict) -> dict[str, float]:
    """Per process: its CPU since `before` (a process started since: all of it). One that ended
    meanwhile is not counted (under-counted, never negative: a sum by name went negative when
    another run's backends ended)."""
    return {name: sum(cpu - before[name].get(pid, 0.0) for pid, cpu in pids.items()) for name, pids in after.items()}


def workers_memory(master: int) -> dict:
    pids = children(master)
    mem = {pid: memory_kib(pid) for pid in pids}
    return {"workers": len(pids), "rss_kib": sum(m.get("rss", 0) for m in mem.values()),
            "pss_kib": sum(m.get("pss", 0) for m in mem.values()), "per_worker": mem}


# --- raw HTTP/1.1 ------------------------------------------------------------------------
async def http(host: str, port: int, method: str, path: str, headers: dict, body: bytes = b"",
               timeout: float = 30.0) -> tuple[int, bytes]:
    """One request on its own connection (Connection: close), read to EOF: (status, body)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close",
                *(f"{k}: {v}" for k, v in headers.items())]
        if body or method == "POST":
            head.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        data = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    parts = status_line.split()
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), rest.partition(b"\r\n\r\n")[2]


# --- the run -----------------------------------------------------------------------------
class Run:
    def __init__(self, plan: dict):
        self.plan = plan
        self.host, self.port = "127.0.0.1", plan["port"]
        self.origin = f"https://127.0.0.1:{self.port}"
        self.proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}  # as the proxy would
        self.first_seen: list[dict[int, float]] = [{} for _ in plan["agents"]]  # per agent: conversation -> time
        self.frames = [0] * len(plan["agents"])
        self.refetch = {name: [RefetchRule(*rule) for _ in plan["agents"]] for name, rule in REFETCH_RULES.items()}
        sent_rule = REFETCH_RULES.get(plan.get("send_refetches") or "")
        self.page_refetch = [PageRefetch(*sent_rule, send=lambda i=i: self.rows_refresh(i))
                             for i in range(len(plan["agents"]))] if sent_rule else None
        self.hello_at: list[float | None] = [None] * len(plan["agents"])
        self.connected = [asyncio.Event() for _ in plan["agents"]]
        self.closes: list[tuple[int, float, int | None]] = []  # (agent, time, close code)
        self.handshake_failures = 0
        self.list_times: list[tuple[float, float, int, str]] = []  # (sent, seconds, status, what)
        self.sends: dict[str, tuple[float, float, int]] = {}  # tweet id -> (sent, seconds, status)
        self.stopping = False
        self.sending = False  # mentions being sent (the pages' refetches, when sent, follow them)

    # -- sockets
    async def agent_socket(self, i: int) -> None:
        agent = self.plan["agents"][i]
        headers = {"Cookie": f"sessionid={agent['session']}", **self.proxy}
        url = f"ws://{self.host}:{self.port}/ws/inbox/?batch=1"  # as static/js/live.js asks: list frames
        backoff = RECONNECT_FIRST
        while not self.stopping:
            try:
                async with connect(url, origin=self.origin, additional_headers=headers, open_timeout=30,
                                   max_size=2**20, compression=None) as ws:
                    backoff = RECONNECT_FIRST  # ws.onopen
                    seen = self.first_seen[i]
                    async for raw in ws:
                        now = time.time()
                        event = json.loads(raw)
                        if event.get("kind") == "hello":
                            self.hello_at[i] = now
                            self.connected[i].set()
                            asyncio.get_running_loop().call_later(LIST_REFRESH_DEBOUNCE, self.rows_refresh, i)
                            continue
                        for change in event["events"] if event.get("kind") == "events" else [event]:
                            cid = change.get("conversation_id")
                            if cid is not None and cid not in seen:
                                seen[cid] = now
                        self.frames[i] += 1
                        for rules in self.refetch.values():
                            rules[i].change(now)
                        if self.page_refetch is not None and self.sending:
                            self.page_refetch[i].change(now)
            except ConnectionClosed as exc:
                self.closes.append((i, time.time(), exc.rcvd.code if exc.rcvd else None))
            except (OSError, InvalidHandshake, asyncio.TimeoutError):
                self.handshake_failures += 1
            else:  # closed cleanly (1000/1001)
                self.closes.append((i, time.time(), ws.close_code))
            self.connected[i].clear()
            if self.stopping:
                return
            await asyncio.sleep(backoff)  # ws.onclose -> scheduleReconnect()
            backoff = min(backoff * 2, RECONNECT_MAX)

    def rows_refresh(self, i: int) -> None:
        """On open the page refetches its rows (htmx, HX-Request): the reconnect's own load."""
        if not self.stopping:
            asyncio.get_running_loop().create_task(self.list_get(i, htmx=True))

    # -- the list page
    async def list_get(self, i: int, htmx: bool = False) -> None:
        agent = self.plan["agents"][i]
        headers = {"Cookie": f"sessionid={agent['session']}", **self.proxy}
        if htmx:
            headers["HX-Request"] = "true"
        sent = time.time()
        t = time.perf_counter()
        try:
            status, _ = await http(self.host, self.port, "GET", self.plan["list_path"], headers)
        except (OSError, asyncio.TimeoutError):
            status = 0
        self.list_times.append((sent, time.perf_counter() - t, status, "rows" if htmx else "page"))

    async def list_loop(self, i: int) -> None:
        every = self.plan["list_every"]
        await asyncio.sleep(every * i / len(self.plan["agents"]))  # staggered
        while not self.stopping:
            started = time.monotonic()
            await self.list_get(i)
            await asyncio.sleep(max(0.0, every - (time.monotonic() - started)))

    # -- mentions
    def delivery(self, n: int, account: dict) -> tuple[str, bytes, str]:
        tweet_id = str(1_800_000_000_000_000_000 + n)
        user_id = str(5_000_000 + n)  # a new customer each: a new conversation each
        tweet = {"created_at": time.strftime("%a %b %d %H:%M:%S +0000 %Y", time.gmtime()), "id_str": tweet_id,
                 "text": f"@{account['handle']} my order {n} has not arrived, where is it?", "lang": "en",
                 "user": {"id_str": user_id, "screen_name": f"cust{n}", "name": f"Customer {n}",
                          "followers_count": random.randint(0, 5000), "verified": False},
                 "in_reply_to_status_id_str": None, "entities": {"user_mentions": [{"id_str": account["user_id"]}]}}
        body = json.dumps({"for_user_id": account["user_id"], "tweet_create_events": [tweet]}).encode()
        signature = "sha256=" + base64.b64encode(
            hmac.new(account["consumer_secret"].encode(), body, hashlib.sha256).digest()).decode()
        return tweet_id, body, signature

    async def send_one(self, n: int, due: float) -> None:
        account = self.plan["accounts"][n % len(self.plan["accounts"])]
        tweet_id, body, signature = self.delivery(n, account)
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        sent = time.time()
        t = time.perf_counter()
        try:
            status, _ = await http(self.host, self.port, "POST", f"/hooks/twitter/{account['id']}/",
                                   {"Content-Type": "application/json", "x-twitter-webhooks-signature": signature,
                                    **self.proxy}, body)
        except (OSError, asyncio.TimeoutError):
            status = 0
        self.sends[tweet_id] = (sent, time.perf_counter() - t, status)

    async def mentions(self, rate: float, seconds: float, start: float) -> None:
        """Open loop: each delivery at its due time, whether or not the earlier ones were answered."""
        tasks = []
        for n in range(int(rate * seconds)):
            due = start + n / rate
            delay = due - 0.05 - time.time()  # scheduled a little ahead; send_one waits for its due time
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.send_one(n, due)))
        await asyncio.gather(*tasks)

    async def threads_sample(self, master: int) -> None:
        """The web workers' thread count each second (a request's Django code runs in a thread of its own)."""
        self.thread_samples = []
        while True:
            self.thread_samples.append(sum(threads(pid) for pid in children(master)))
            await asyncio.sleep(1)

    # -- phases
    async def warm(self) -> None:
        """Pages and sockets served a few times on every worker first (templates, first-use imports,
        pools), so the memory before and after differ by the sockets, not by a cold start."""
        url = f"ws://{self.host}:{self.port}/ws/inbox/"
        for i in range(min(20, len(self.plan["agents"]))):
            await self.list_get(i)
            await self.list_get(i, htmx=True)
            headers = {"Cookie": f"sessionid={self.plan['agents'][i]['session']}", **self.proxy}
            async with connect(url, origin=self.origin, additional_headers=headers, open_timeout=30) as ws:
                await asyncio.wait_for(ws.recv(), 30)  # hello
        await asyncio.sleep(1)

    async def main(self) -> dict:
        plan, out = self.plan, {}
        master = plan["master_pid"]
        agents = range(len(plan["agents"]))
        me = os.getpid()
        await self.warm()
        out["memory_before"] = workers_memory(master)

        t = time.time()
        sockets = []
        for i in agents:  # a team arriving at work: not all in the same millisecond
            sockets.append(asyncio.create_task(self.agent_socket(i)))
            await asyncio.sleep(0.005)
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in self.connected)), 120)
        out["connect_all_seconds"] = time.time() - t
        await asyncio.sleep(3)  # the rows refetches of the first connect are done
        out["memory_after"] = workers_memory(master)

        lists = [asyncio.create_task(self.list_loop(i)) for i in agents]
        await asyncio.sleep(2)
        workers = plan["worker_pids"]  # name -> pid: the Celery workers and beat

        def workers_cpu() -> dict[str, float]:
            return {name: sum(map(cpu_seconds, [pid, *children(pid)])) for name, pid in workers.items()}

        cpu_before = {"load": cpu_seconds(me), "web": sum(map(cpu_seconds, children(master))),
                      "celery": workers_cpu(),
                      "services": service_cpu(plan.get("db"))}
        stat0 = _proc_stat()
        start = time.time() + 0.5
        sampler = asyncio.create_task(self.threads_sample(master))
        self.sending = True
        await self.mentions(plan["rate"], plan["seconds"], start)
        out["sent_seconds"] = time.time() - start
        out["last_sent"] = max(sent for sent, _, _ in self.sends.values()) - start
        await asyncio.sleep(plan["tail_seconds"])  # the last mentions' events
        out["window"] = [start, time.time()]
        self.sending = False
        out["refetches"] = {}  # name -> refetches in the window, all pages
        for name, rules in self.refetch.items():
            for rule in rules:
                rule.until(out["window"][1])
            out["refetches"][name] = sum(start <= at <= out["window"][1] for rule in rules for at in rule.times)
        workers_after = workers_cpu()
        out["cpu"] = {"machine_busy": _busy(stat0, _proc_stat()), "seconds": time.time() - start,
                      "load_generator_cpu_s": cpu_seconds(me) - cpu_before["load"],
                      "web_workers_cpu_s": sum(map(cpu_seconds, children(master))) - cpu_before["web"],
                      "celery_cpu_s": sum(workers_after.values()) - sum(cpu_before["celery"].values()),
                      "celery_split_cpu_s": {name: cpu - cpu_before["celery"][name]
                                             for name, cpu in workers_after.items()},
                      **{f"{name}_cpu_s": seconds for name, seconds in
                         service_cpu_delta(cpu_before["services"], service_cpu(plan.get("db"))).items()}}
        out["memory_loaded"] = workers_memory(master)
        sampler.cancel()
        out["web_threads"] = self.thread_samples

        # a deploy: graceful restart of the web tier
        old = set(children(master))
        hup = time.time()
        os.kill(master, signal.SIGHUP)
        down = time.time() + 60
        while time.time() < down and any(h is None or h < hup for h in self.hello_at):
            await asyncio.sleep(0.05)
        back = [h - hup for h in self.hello_at if h is not None and h >= hup]
        out["restart"] = {"sockets": len(self.hello_at), "reconnected": len(back),
                          "all_back_seconds": max(back) if len(back) == len(self.hello_at) else None,
                          "reconnect_seconds": sorted(back),
                          "close_codes": sorted({str(c) for _, at, c in self.closes if at >= hup}),
                          "handshake_failures": self.handshake_failures}
        await asyncio.sleep(5)
        out["restart"]["old_workers_left"] = not (set(children(master)) & old)
        out["memory_after_restart"] = workers_memory(master)

        self.stopping = True
        for task in sockets + lists:
            task.cancel()
        await asyncio.gather(*sockets, *lists, return_exceptions=True)
        out["sends"] = self.sends
        out["first_seen"] = [{str(k): v for k, v in seen.items()} for seen in self.first_seen]
        out["frames"] = self.frames
        out["list_times"] = self.list_times
        return out


def _proc_stat() -> tuple[int, int]:
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return sum(parts), parts[3] + parts[4]


def _busy(a, b) -> float:
    total, idle = b[0] - a[0], b[1] - a[1]
    return 0.0 if total <= 0 else (total - idle) / total


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text())
    out = asyncio.run(Run(plan).main())
    Path(sys.argv[2]).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
