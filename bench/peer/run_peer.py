"""Runs inside the peer's venv: loads N tickets (and 4 follow-ups each) into
django-helpdesk with COPY, then times its ticket list (the page and the
DataTables JSON that fills it) and a ticket page. Prints JSON."""
import json
import os
import random
import sys
import time
import uuid
from base64 import b64encode

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peer.settings")
import django  # noqa: E402

django.setup()


def pct(values, p):
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def load(n: int) -> float:
    import psycopg
    from django.contrib.auth.models import User
    from django.db import connection
    from helpdesk.models import Queue

    t0 = time.perf_counter()
    staff = User.objects.create_superuser("staff", "staff@example.com", "x")
    agents = [User.objects.create_user(f"agent{i}", is_staff=True) for i in range(60)]
    queues = [Queue.objects.create(title=f"Queue {i}", slug=f"q{i}") for i in range(6)]
    dsn = connection.get_connection_params()
    conn = psycopg.connect(dbname=dsn["dbname"], user=dsn.get("user"), host=dsn.get("host"), port=dsn.get("port"),
                           autocommit=True)
    conn.execute("SET session_replication_role = replica")
    rng = random.Random(1)
    base = time.time() - 365 * 86400
    with conn.cursor().copy("COPY helpdesk_ticket (id, title, created, modified, submitter_email, status, on_hold, "
                            "description, resolution, priority, assigned_to_id, queue_id, secret_key) "
                            "FROM STDIN") as cp:
        buf = []
        for i in range(1, n + 1):
            created = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(base + 365 * 86400 * i / n))
            status = rng.choice((1, 1, 2)) if i > n * 0.97 else rng.choice((3, 3, 3, 4))
            buf.append(f"{i}\tMy order #{rng.randint(10000, 99999)} still hasn't arrived\t{created}\t{created}\t"
                       f"c{i}@example.com\t{status}\tf\tWhere is it? It has been two weeks.\t\t"
                       f"{rng.randint(1, 5)}\t{agents[rng.randrange(60)].pk}\t{queues[rng.randrange(6)].pk}\t"
                       f"{uuid.UUID(int=rng.getrandbits(128))}\n")
            if len(buf) == 20000:
                cp.write("".join(buf))
                buf.clear()
        cp.write("".join(buf))
    with conn.cursor().copy("COPY helpdesk_followup (ticket_id, date, title, comment, public, user_id) "
                            "FROM STDIN") as cp:
        buf = []
        for i in range(1, n + 1):
            created = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(base + 365 * 86400 * i / n + 3600))
            for j in range(4):
                buf.append(f"{i}\t{created}\tComment\tThanks, we are looking into it.\tt\t{staff.pk}\n")
            if len(buf) >= 20000:
                cp.write("".join(buf))
                buf.clear()
        cp.write("".join(buf))
    conn.execute("SET session_replication_role = DEFAULT")
    for t in ("helpdesk_ticket", "helpdesk_followup"):
        conn.execute(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))")
    conn.execute("VACUUM ANALYZE")
    conn.close()
    return time.perf_counter() - t0


def timed(client, url, n):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(2):
        t = time.perf_counter()
        r = client.get(url)
        assert r.status_code == 200, (url, r.status_code, r.content[:300])
        if time.perf_counter() - t > 5:
            n = min(n, 3)  # tens of seconds a request: a few samples tell the story
    with CaptureQueriesContext(connection) as ctx:
        client.get(url)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        client.get(url)
        times.append(time.perf_counter() - t)
    return {"p50": pct(times, 50) * 1000, "p95": pct(times, 95) * 1000, "queries": len(ctx.captured_queries) or "n/a"}


def main():
    n, requests = int(sys.argv[1]), int(sys.argv[2])
    from django.contrib.auth.models import User
    from django.test import Client
    from helpdesk.models import Ticket

    out = {}
    if not Ticket.objects.exists():
        out["load_seconds"] = load(n)
    out["tickets"] = Ticket.objects.count()
    client = Client()
    client.force_login(User.objects.get(username="staff"))
    query = {"filtering": {"status__in": [1, 2]}, "filtering_null": {}, "sorting": "created",
             "search_string": "", "sortreverse": False}
    q64 = b64encode(json.dumps(query).encode()).decode()
    rows = []
    for what, url in (
        ("ticket list page (open + reopened)", "/helpdesk/tickets/"),
        ("ticket list DataTables JSON, 25 rows (open + reopened)",
         f"/helpdesk/datatables_ticket_list/{q64}?draw=1&start=0&length=25"),
        ("ticket list DataTables JSON, 50 rows, all statuses",
         "/helpdesk/datatables_ticket_list/" + b64encode(json.dumps({**query, "filtering": {}}).encode()).decode()
         + "?draw=1&start=0&length=50"),
        ("ticket page", f"/helpdesk/tickets/{n // 2}/"),
    ):
        rows.append({"what": what, "url": url, **timed(client, url, requests)})
    out["rows"] = rows
    print(json.dumps(out))


if __name__ == "__main__":
    main()
