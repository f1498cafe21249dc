"""Production serving as shipped: the `web` line of Procfile.production (collectstatic,
migrate, then gunicorn with deploy/gunicorn.conf.py serving cxinbox.asgi on uvicorn
workers), started through honcho with the production settings, and used over real
HTTP and a real websocket: the login page with hashed static files, a login, the
inbox, the inbox websocket of a logged-in agent receiving an event pushed through
Redis from another process, the origin check; slow clients that stall mid-request
neither pin a worker nor keep another client waiting, and are cut off after the
header timeout; the database connections stay bounded by the pool.

Needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL), as `.ci/run` gives it; it makes
and drops its own database (tests/deploy/test_production_smoke.py does the WSGI deploy)."""
import asyncio
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import requests
from cryptography.fernet import Fernet

from cxinbox.cpu_priority import autogroup_nice_read
from tests.deploy.test_production_smoke import _free_port, _log, _run
from tests.processes import process_group_stop

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")
WORKERS = 2
HEADER_TIMEOUT = 5

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not DATABASE_URL.startswith(("postgres://", "postgresql://")) or not REDIS_URL,
                       reason="needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL); .ci/run sets them"),
]


def _config(env_overrides: dict) -> dict:
    """The shipped gunicorn config as gunicorn reads it, in a clean process with this environment."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WEB_", "DJANGO_", "PYTEST_", "CX_TEST_")) and k not in ("PORT", "DB_POOL_MAX_SIZE")}
    env.update(env_overrides)
    code = ("import json, os, runpy; c = runpy.run_path('deploy/gunicorn.conf.py'); "
            "keys = ('workers', 'worker_class', 'bind', 'timeout', 'graceful_timeout', 'keepalive', 'max_requests', "
            "'max_requests_jitter', 'worker_connections'); "
            "print(json.dumps({**{k: c[k] for k in keys}, 'cores': len(os.sched_getaffinity(0)), "
            "'DB_POOL_MAX_SIZE': os.environ.get('DB_POOL_MAX_SIZE')}))")
    return json.loads(_run([sys.executable, "-c", code], env).stdout)


def test_shipped_config_sizes_workers_for_the_box():
    config = _config({})
    assert config["workers"] == max(2, config["cores"])  # one per core, never fewer than 2
    assert config["worker_class"] == "cxinbox.asgi_worker.Worker"
    assert config["bind"] == ["127.0.0.1:8000"]  # only the proxy on this host reaches it
    assert config["DB_POOL_MAX_SIZE"] == "8"  # the ASGI tier takes connections from a pool
    assert config["graceful_timeout"] >= 10 and config["timeout"] >= 10
    assert config["max_requests"] > 0 and 0 < config["max_requests_jitter"] < config["max_requests"]
    assert config["keepalive"] > 60  # above the proxy's usual upstream keepalive (nginx: 60 s)

    config = _config({"WEB_CONCURRENCY": "7", "PORT": "5100", "DB_POOL_MAX_SIZE": "3"})
    assert config["workers"] == 7 and config["bind"] == ["127.0.0.1:5100"] and config["DB_POOL_MAX_SIZE"] == "3"
    assert _config({"WEB_BIND": "unix:/run/cx/web.sock", "PORT": "5100"})["bind"] == ["unix:/run/cx/web.sock"]


def test_shipped_config_empties_the_metrics_directory_at_start(tmp_path):
    (tmp_path / "counter_123.db").write_bytes(b"old samples")
    (tmp_path / "keep.txt").write_text("not ours")
    code = "import runpy; runpy.run_path('deploy/gunicorn.conf.py')['on_starting'](None)"
    _run([sys.executable, "-c", code], {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Procfile.production's web line through honcho, on a database of its own."""
    tmp = tmp_path_factory.mktemp("serve")
    parts = urlsplit(DATABASE_URL)
    name = f"{parts.path.lstrip('/') or 'cxinbox'}_serve_{os.getpid()}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "PYTEST_", "CX_TEST_", "WEB_")) and k not in ("DB_POOL_MAX_SIZE",)}
    env.update({
        "DJANGO_SETTINGS_MODULE": "cxinbox.settings.production",
        "SECRET_KEY": "serve-" + "k" * 44,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": urlunsplit(parts._replace(path=f"/{name}")),
        "REDIS_URL": REDIS_URL,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "STATIC_ROOT": str(tmp / "static"),
        "LOG_LEVEL": "WARNING",
        "VENV": str(BIN.parent),
        "PORT": str(port),
        "WEB_CONCURRENCY": str(WORKERS),
        "WEB_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
    })
    (tmp / "empty.env").write_text("")  # not the developer's .env (honcho lets it override the environment)
    log = open(tmp / "honcho.log", "w+")
    web = subprocess.Popen(
        [str(BIN / "honcho"), "-f", "Procfile.production", "-e", str(tmp / "empty.env"), "--no-colour",
         "start", "web"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180  # collectstatic and migrate run first
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert web.poll() is None and time.monotonic() < deadline, _log(log)
                time.sleep(0.3)
        _run([sys.executable, "manage.py", "shell", "-c",
              "from apps.accounts.models import User; "
              "User.objects.create_user(username='serve', password='serve-pass-123', role='agent')"], env)
        yield {"port": port, "base": f"http://127.0.0.1:{port}", "log": log, "env": env, "db": name, "honcho": web.pid,
               "admin": admin, "static": tmp / "static"}
    finally:
        process_group_stop(web)
        log.close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


PROXY = {"X-Forwarded-Proto": "https"}  # TLS ends at the proxy; cookies are Secure, carried by hand


def _login(server, username: str = "serve", password: str = "serve-pass-123") -> dict[str, str]:
    base, origin = server["base"], f"https://127.0.0.1:{server['port']}"
    page = requests.get(base + "/login/", headers=PROXY, timeout=30)
    cookies = page.cookies.get_dict()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    login = requests.post(
        base + "/login/", data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={**PROXY, "Referer": f"{origin}/login/", "Origin": origin}, cookies=cookies,
        allow_redirects=False, timeout=30,
    )
    assert login.status_code == 302, (login.status_code, login.text[:500], _log(server["log"]))
    cookies.update(login.cookies.get_dict())
    assert "sessionid" in cookies
    return cookies


def _push_to_user(user_id: int, event: dict) -> None:
    """What a Celery worker does for a toast: a group message through the Redis channel layer."""
    from channels_redis.core import RedisChannelLayer

    async def send():
        layer = RedisChannelLayer(hosts=[REDIS_URL])
        try:
            await layer.group_send(f"user.{user_id}", {"type": "inbox.event", **event})
        finally:
            await layer.close_pools()

    asyncio.run(send())


def test_pages_static_files_and_inbox_websocket_on_the_asgi_tier(server):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    base, port, log = server["base"], server["port"], server["log"]
    page = requests.get(base + "/login/", headers=PROXY, timeout=30)
    assert page.status_code == 200, _log(log)
    assert "Content-Security-Policy" in page.headers
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    assets = set(re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text))
    assert assets
    for asset in assets:  # collectstatic ran: manifest names, served by whitenoise
        assert re.search(r"\.[0-9a-f]{12}\.", asset), f"{asset} is not a hashed manifest name"
        assert requests.get(base + asset, timeout=30).status_code == 200, asset
    assert (server["static"] / "staticfiles.json").exists()

    cookies = _login(server)
    inbox = requests.get(base + "/inbox/", headers=PROXY, cookies=cookies, allow_redirects=False, timeout=30)
    assert inbox.status_code == 200, _log(log)

    url, origin = f"ws://127.0.0.1:{port}/ws/inbox/", f"https://127.0.0.1:{port}"
    with connect(url, origin=origin, additional_headers={"Cookie": f"sessionid={cookies['sessionid']}"},
                 proxy=None, open_timeout=15) as ws:
        hello = json.loads(ws.recv(timeout=15))
        assert hello["kind"] == "hello", hello
        # an event sent by another process (a worker) reaches this socket through Redis
        _push_to_user(hello["user_id"], {"kind": "toast", "text": "assigned to you"})
        assert json.loads(ws.recv(timeout=15)) == {"kind": "toast", "text": "assigned to you"}

    # another site's page may not open the socket with the agent's cookie (403 at the handshake)
    with pytest.raises(InvalidStatus) as refused:
        connect(url, origin="https://evil.example", proxy=None, open_timeout=15,
                additional_headers={"Cookie": f"sessionid={cookies['sessionid']}"})
    assert refused.value.response.status_code == 403
    # without a login the handshake is refused (the consumer closes before accepting)
    with pytest.raises(InvalidStatus) as refused:
        connect(url, origin=origin, proxy=None, open_timeout=15)
    assert refused.value.response.status_code == 403


def test_slow_clients_do_not_keep_others_waiting_and_are_cut_off(server):
    base, port, log = server["base"], server["port"], server["log"]
    # Ten stalled clients per worker: with gunicorn's sync workers two of them took the site down.
    slow = []
    for i in range(10 * WORKERS):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /login/ HT" if i % 2 else b"POST /hooks/twitter/1/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-")
        slow.append(s)
    try:
        time.sleep(0.5)
        for _ in range(5):
            started = time.monotonic()
            r = requests.get(base + "/login/", headers=PROXY, timeout=10)
            assert r.status_code == 200, _log(log)
            assert time.monotonic() - started < 2, "a client waited behind the stalled ones"
        # still waiting: nothing was answered to a half request, none was closed yet
        readable, _, _ = select.select(slow, [], [], 0.2)
        assert readable == []
        # past the header timeout the server has closed every one of them
        time.sleep(HEADER_TIMEOUT + 1.5)
        for s in slow:
            s.settimeout(5)
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass
    finally:
        for s in slow:
            s.close()


def test_database_connections_stay_bounded_by_the_pool(server):
    cookies = _login(server)
    with requests.Session() as session:
        for _ in range(40):
            r = session.get(server["base"] + "/inbox/", headers=PROXY, cookies=cookies, allow_redirects=False,
                            timeout=30)
            assert r.status_code == 200, _log(server["log"])
    with psycopg.connect(server["admin"], autocommit=True) as conn:
        (count,) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [server["db"]]).fetchone()
    # One request at a time: a worker's pool lends the same connection again. Persistent connections
    # under ASGI (CONN_MAX_AGE=60, no pool) left 16 open here after these 40 requests, one per request thread
    # until the garbage collector found them.
    assert 0 < count <= WORKERS * 2, count


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _gunicorn_master(honcho: int) -> int:
    """honcho -> its process runner -> the web line, which execs gunicorn (the master)."""
    pending = [honcho]
    while pending:
        pid = pending.pop()
        for child in _children(pid):
            cmdline = (Path("/proc") / str(child) / "cmdline").read_bytes()
            if b"gunicorn" in cmdline:
                return child
            pending.append(child)
    raise AssertionError("no gunicorn under honcho")


def test_graceful_restart_closes_sockets_1012_and_they_reconnect(server):
    """A deploy's `kill -HUP` of the gunicorn master: new workers start, the old ones close
    their websockets with 1012 (service restart) and the pages reconnect to the new ones."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    master = _gunicorn_master(server["honcho"])
    cookies = _login(server)
    url, origin = f"ws://127.0.0.1:{server['port']}/ws/inbox/", f"https://127.0.0.1:{server['port']}"
    headers = {"Cookie": f"sessionid={cookies['sessionid']}"}
    with connect(url, origin=origin, additional_headers=headers, proxy=None, open_timeout=15) as ws:
        assert json.loads(ws.recv(timeout=15))["kind"] == "hello"
        old_workers = set(_children(master))
        os.kill(master, signal.SIGHUP)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012, closed.value
    deadline = time.monotonic() + 30
    while True:
        try:
            with connect(url, origin=origin, additional_headers=headers, proxy=None, open_timeout=5) as ws:
                assert json.loads(ws.recv(timeout=15))["kind"] == "hello"
            break
        except (OSError, ConnectionClosed, InvalidStatus):  # a handshake on a worker leaving: 500; the page retries
            assert time.monotonic() < deadline, _log(server["log"])
            time.sleep(0.5)
    assert requests.get(server["base"] + "/login/", headers=PROXY, timeout=30).status_code == 200
    deadline = time.monotonic() + 40  # the old workers leave within the graceful timeout
    while (workers := set(_children(master))) & old_workers and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(workers) == WORKERS and not workers & old_workers, (old_workers, workers)


TEAMS_SETUP = """
import json
from apps.accounts.models import Team, User
from apps.connectors.models import ChannelAccount
from apps.routing.models import RoutingRule
from apps.inbox.models import Queue
out = {}
for k in ("a", "b"):
    team = Team.objects.create(name=f"Scope team {k}")
    queue = Queue.objects.create(name=f"Scope queue {k}", team=team)
    account = ChannelAccount.objects.create(
        provider="twitter", handle=f"@scope{k}", name=f"Scope {k}", external_user_id=f"8800{ord(k)}",
        credentials={"bearer_token": "b", "consumer_key": "ck", "consumer_secret": f"scope-secret-{k}",
                     "access_token": "at", "access_token_secret": "ats"})
    rule = RoutingRule.objects.create(name=f"Scope {k}", position=ord(k), set_queue=queue, stop=True)
    rule.channel_accounts.add(account)
    team.members.add(User.objects.create_user(username=f"scope-{k}", password="scope-pass-123", role="agent"))
    out[k] = {"account": account.pk, "for_user": account.external_user_id, "secret": f"scope-secret-{k}"}
print(json.dumps(out))
"""


def _deliver(server, account: dict, tweet_id: str) -> None:
    """A signed X Account Activity delivery of one new customer's tweet, as X sends it."""
    import base64
    import hashlib
    import hmac

    tweet = {"created_at": time.strftime("%a %b %d %H:%M:%S +0000 %Y", time.gmtime()), "id_str": tweet_id,
             "text": "@scope my parcel is lost", "in_reply_to_status_id_str": None,
             "user": {"id_str": "9" + tweet_id[-6:], "screen_name": f"c{tweet_id[-6:]}", "name": "Cust",
                      "followers_count": 10},
             "entities": {"user_mentions": [{"id_str": account["for_user"]}]}}
    body = json.dumps({"for_user_id": account["for_user"], "tweet_create_events": [tweet]}).encode()
    signature = "sha256=" + base64.b64encode(hmac.new(account["secret"].encode(), body, hashlib.sha256).digest()).decode()
    r = requests.post(f"{server['base']}/hooks/twitter/{account['account']}/", data=body, timeout=30,
                      headers={**PROXY, "Content-Type": "application/json", "x-twitter-webhooks-signature": signature})
    assert r.status_code == 200, (r.status_code, r.text[:300], _log(server["log"]))


def _conversations_heard(ws, until_id: int | None, seconds: float) -> set[int]:
    """The conversation ids of the frames a socket receives: until one names `until_id`, or for `seconds`."""
    heard = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            frame = json.loads(ws.recv(timeout=max(0.05, deadline - time.monotonic())))
        except TimeoutError:
            break
        if frame.get("conversation_id") is not None:
            heard.add(frame["conversation_id"])
            if frame["conversation_id"] == until_id:
                break
    return heard


def test_a_mention_reaches_its_teams_sockets_and_no_other_team(server):
    """Issue 19, end to end on the production tier: a signed delivery to team A's X account, ingested
    and routed by a real Celery worker, reaches team A's agent on the websocket (through Redis) and
    never team B's; and the other way round."""
    from websockets.sync.client import connect

    env = server["env"]
    accounts = json.loads(_run([sys.executable, "manage.py", "shell", "-c", TEAMS_SETUP], env).stdout.splitlines()[-1])
    worker = subprocess.Popen(
        [str(BIN / "celery"), "-A", "cxinbox", "worker", "-Q", "ingest,routing,default", "-c", "1",
         "-n", f"scope-{os.getpid()}@%h", "-l", "WARNING", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=server["log"], stderr=subprocess.STDOUT)
    url, origin = f"ws://127.0.0.1:{server['port']}/ws/inbox/", f"https://127.0.0.1:{server['port']}"
    try:
        sockets = {}
        for k in ("a", "b"):
            cookies = _login(server, f"scope-{k}", "scope-pass-123")
            sockets[k] = connect(url, origin=origin, proxy=None, open_timeout=15,
                                 additional_headers={"Cookie": f"sessionid={cookies['sessionid']}"})
            assert json.loads(sockets[k].recv(timeout=15))["kind"] == "hello"

        def conversation_of(tweet_id: str) -> int:
            with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
                deadline = time.monotonic() + 90  # the worker starts, ingests and routes
                while time.monotonic() < deadline:
                    row = conn.execute("SELECT m.conversation_id FROM inbox_message m JOIN inbox_conversation c "
                                       "ON c.id = m.conversation_id WHERE m.external_id = %s "
                                       "AND c.queue_id IS NOT NULL", [tweet_id]).fetchone()
                    if row:
                        return row[0]
                    time.sleep(0.2)
            raise AssertionError(f"tweet {tweet_id} was not routed: {_log(server['log'])}")

        _deliver(server, accounts["a"], "1900000000000000001")
        conv_a = conversation_of("1900000000000000001")
        assert conv_a in _conversations_heard(sockets["a"], conv_a, 30)
        _deliver(server, accounts["b"], "1900000000000000002")
        conv_b = conversation_of("1900000000000000002")
        heard_b = _conversations_heard(sockets["b"], conv_b, 30)
        assert conv_b in heard_b and conv_a not in heard_b  # B heard its own and nothing of A's
        assert conv_b not in _conversations_heard(sockets["a"], None, 2)  # A heard nothing of B's
        for ws in sockets.values():
            ws.close()
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def test_the_workers_run_below_the_web_tiers_cpu_priority(server):
    """On a shared box a page an agent waits for goes before a batch that can wait: the worker
    lines of Procfile.production start Celery at nice 10, and the reports worker lowest, at 19:
    under a burst, counting for the reports waits for the mentions to be routed (docs/operations.md,
    "CPU priority")."""
    tmp = Path(server["static"]).parent
    env = {**server["env"], "ROUTING_CONCURRENCY": "1"}
    log = open(tmp / "worker.log", "w+")
    honcho = subprocess.Popen(
        [str(BIN / "honcho"), "-f", "Procfile.production", "-e", str(tmp / "empty.env"), "--no-colour",
         "start", "routing", "misc"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        deadline, found = time.monotonic() + 90, {}
        while len(found) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    if any(part.endswith(b"celery") for part in cmd) and b"worker" in cmd:
                        for name in (b"routing@", b"misc@"):
                            if any(part.startswith(name) for part in cmd):
                                found.setdefault(name.decode()[:-1], set()).add(int(pid))
                except OSError:
                    continue
        assert set(found) == {"routing", "misc"}, _log(log)
        assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in found["routing"]} == {10}
        assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in found["misc"]} == {19}
        assert os.getpriority(os.PRIO_PROCESS, 0) == 0  # and this process, like the web tier, is not lowered
        if autogroup_nice_read() is not None:
            # honcho starts each line in a session of its own: with autogroup scheduling the kernel
            # shares the CPU between sessions first, where a process's nice weighs nothing. Each
            # worker gives its session its niceness (cxinbox/cpu_priority.py)
            wanted = {"routing": 10, "misc": 19}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and any(
                    autogroup_nice_read(f"/proc/{min(found[name])}/autogroup") != nice for name, nice in wanted.items()):
                time.sleep(0.5)
            assert {name: autogroup_nice_read(f"/proc/{min(found[name])}/autogroup") for name in wanted} == wanted, \
                _log(log)
            assert autogroup_nice_read() == 0  # this test's own session (the web tier's kind) untouched
    finally:
        process_group_stop(honcho)
        log.close()
