"""Builds the large data set for the inbox and reports benchmarks with COPY.

    python -m bench.generate [--conversations 1000000] [--messages-per 5] [--db cx_bench_big]

Creates (drops first) the database, migrates it, makes a few teams, agents,
queues and channel accounts with the ORM, then streams customers, identities,
conversations, messages, audit events and tags into PostgreSQL with COPY (no
ORM, no per-row INSERT), with the non-unique indexes dropped during the load
and rebuilt after it. Columns other apps add later get their type's empty
value, so the generator keeps working as the schema grows.

Shape: conversations spread over a year, oldest first; ~3% are still being
worked (new/open/pending, with SLA due times), the rest resolved or closed;
1-9 messages each (mean 5), customer and agent alternating."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import time

from .common import BIG_DB, db_recreate, db_url, django_setup, log, migrate

TEXTS_IN = [
    "@acme my order #{n} still hasn't arrived and it's been two weeks. Where is it?",
    "@acme I was charged twice this month. I want a refund now.",
    "@acme the app keeps crashing when I open settings. Completely broken since the update.",
    "@acme is there an outage? Nothing loads for me since 9am.",
    "@acme how do I change the email on my account?",
    "@acme thanks for the quick fix yesterday, you folks are great!",
    "@acme I've been on hold for an hour. Terrible service, thinking about cancelling.",
    "@acme love the new dashboard, really clean",
    "@acme my package #{n} arrived damaged. What now?",
    "@acme still waiting on this...",
    "@acme ok, order number is {n}",
    "@acme ¿alguien me puede ayudar? No puedo iniciar sesión desde ayer.",
]
TEXTS_OUT = [
    "Sorry to hear that! Could you DM us your order number so we can check?",
    "Thanks for reaching out. We've refunded the duplicate charge; it shows in 3-5 days.",
    "We're on it: a fix for the settings crash ships today.",
    "Glad we could help! Have a great day.",
    "Thanks for your patience, your case is now escalated to our billing team.",
]
SENTIMENTS = [(-0.72, "negative"), (-0.34, "negative"), (0.0, "neutral"), (0.0, "neutral"), (0.42, "positive"),
              (0.81, "positive")]
PROVIDERS = ["twitter", "mastodon", "bluesky", "email"]
STATUS_DONE = ["resolved"] * 4 + ["closed"]
STATUS_ACTIVE = ["new", "open", "open", "pending"]


def ts(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S+00")


class Copier:
    """COPY FROM STDIN for one table: known columns in order, the table's other
    NOT NULL columns (added by other apps) filled with an empty value of their type."""

    EMPTY = {"character varying": "", "text": "", "integer": "0", "bigint": "0", "smallint": "0",
             "boolean": "f", "jsonb": "{}", "json": "{}", "double precision": "0",
             "timestamp with time zone": "2026-01-01 00:00:00+00", "date": "2026-01-01", "numeric": "0"}

    def __init__(self, conn, table: str, columns: list[str]):
        import psycopg

        # one COPY at a time per connection: each table streams on its own
        conn = psycopg.connect(conn.info.dsn, autocommit=True)
        conn.execute("SET session_replication_role = replica")
        rows = conn.execute(
            "select column_name, data_type, is_nullable, column_default from information_schema.columns "
            "where table_name = %s order by ordinal_position", [table]).fetchall()
        extra = [(name, kind) for name, kind, nullable, default in rows
                 if name not in columns and nullable == "NO" and default is None]
        self.columns = columns + [name for name, _ in extra]
        self.suffix = "".join("\t" + self.EMPTY.get(kind, "") for _, kind in extra)
        self.conn, self.table, self.buf, self.rows = conn, table, [], 0

    def __enter__(self):
        self.cursor = self.conn.cursor()
        self._cm = self.cursor.copy(f"COPY {self.table} ({', '.join(self.columns)}) FROM STDIN")
        self.copy = self._cm.__enter__()
        return self

    def row(self, line: str) -> None:
        self.buf.append(line + self.suffix + "\n")
        self.rows += 1
        if len(self.buf) >= 20000:
            self.copy.write("".join(self.buf))
            self.buf.clear()

    def __exit__(self, *exc):
        if self.buf:
            self.copy.write("".join(self.buf))
        self._cm.__exit__(*exc)
        self.conn.close()


def drop_secondary_indexes(conn, tables: list[str]) -> list[str]:
    """Non-constraint indexes of the tables: dropped for the load, rebuilt after (much faster)."""
    rows = conn.execute(
        "select i.indexname, i.indexdef from pg_indexes i where i.tablename = any(%s) and not exists "
        "(select 1 from pg_constraint c where c.conname = i.indexname)", [tables]).fetchall()
    for name, _ in rows:
        conn.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in rows]


def setup_people(n_agents: int):
    from apps.accounts.models import Team, User
    from apps.connectors.models import ChannelAccount
    from apps.inbox.models import Queue

    teams = [Team.objects.create(name=f"Team {i}") for i in range(3)]
    agents = []
    for i in range(n_agents):
        u = User.objects.create(username=f"agent{i}", role="agent", presence="online", capacity=50,
                                first_name=f"Agent{i}")
        teams[i % len(teams)].members.add(u)
        agents.append(u)
    sup = User.objects.create(username="supervisor", role="supervisor")
    teams[0].members.add(sup)
    teams[0].leads.add(sup)
    User.objects.create(username="admin", role="admin", is_superuser=True, is_staff=True)
    User.objects.create(username="marketing", role="marketing")
    queues = [Queue.objects.create(name=f"Queue {i}", team=teams[i % len(teams)], is_default=(i == 0),
                                   assignment_mode="least_loaded") for i in range(6)]
    accounts = [ChannelAccount.objects.create(provider=p, name=f"Acme {p}", handle=f"@acme_{p}")
                for p in PROVIDERS]
    team_of_queue = {q.pk: q.team_id for q in queues}
    agents_of_team = {t.pk: [a.pk for j, a in enumerate(agents) if j % len(teams) == k] for k, t in enumerate(teams)}
    return agents, queues, accounts, team_of_queue, agents_of_team


def generate(*, db: str, conversations: int, messages_per: float, seed: int = 1, end: dt.datetime | None = None,
             days: int = 365, fresh: bool = True) -> dict:
    """Loads the set (fresh: recreate the database first). Returns counts and timings."""
    import psycopg

    t_all = time.perf_counter()
    timings = {}
    if fresh:
        db_recreate(db)
        timings["migrate"] = migrate(db)
    django_setup(db)
    rng = random.Random(seed)
    end = end or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    start = end - dt.timedelta(days=days)
    if fresh:
        agents, queues, accounts, team_of_queue, agents_of_team = setup_people(60)
    else:
        from apps.accounts.models import Team, User
        from apps.connectors.models import ChannelAccount
        from apps.inbox.models import Queue

        agents = list(User.objects.filter(role="agent").order_by("pk"))
        queues = list(Queue.objects.order_by("pk"))
        accounts = list(ChannelAccount.objects.order_by("pk"))
        team_of_queue = {q.pk: q.team_id for q in queues}
        agents_of_team = {t.pk: list(t.members.filter(role="agent").values_list("pk", flat=True))
                          for t in Team.objects.all()}

    with psycopg.connect(db_url(db), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no FK triggers during the load
        conn.execute("SET maintenance_work_mem = '512MB'")
        tables = ["contacts_customer", "contacts_socialidentity", "inbox_conversation", "inbox_message",
                  "inbox_conversationevent", "inbox_conversation_tags"]
        base = {t: conn.execute(f"select coalesce(max(id), 0) from {t}").fetchone()[0] for t in tables}
        t = time.perf_counter()
        indexes = drop_secondary_indexes(conn, tables)
        n_customers = max(1, int(conversations * 0.7))
        now_s = ts(end)

        # customers + identities (one each)
        t = time.perf_counter()
        with Copier(conn, "contacts_customer", ["id", "created_at", "updated_at", "name", "email", "tier", "tags",
                                                "notes"]) as cp:
            for i in range(1, n_customers + 1):
                cid = base["contacts_customer"] + i
                tier = "vip" if i % 97 == 0 else "standard"
                cp.row(f"{cid}\t{now_s}\t{now_s}\tCustomer {cid}\t\t{tier}\t[]\t")
        with Copier(conn, "contacts_socialidentity", [
                "id", "created_at", "updated_at", "provider", "external_id", "handle", "display_name",
                "followers_count", "profile_url", "avatar_url", "verified", "customer_id"]) as cp:
            for i in range(1, n_customers + 1):
                cid = base["contacts_customer"] + i
                iid = base["contacts_socialidentity"] + i
                p = PROVIDERS[i % 4]
                cp.row(f"{iid}\t{now_s}\t{now_s}\t{p}\tu{iid}\tuser{iid}\tCustomer {cid}\t{(i * 7919) % 20000}\t"
                       f"https://example.social/@user{iid}\t\tf\t{cid}")
        timings["customers"] = time.perf_counter() - t

        # conversations, messages, events
        t = time.perf_counter()
        span = (end - start).total_seconds()
        active_from = int(conversations * 0.97)
        msg_id = base["inbox_message"]
        ev_id = base["inbox_conversationevent"]
        n_msgs = n_events = n_tags = 0
        acc_ids = [a.pk for a in accounts]
        acc_provider = {a.pk: a.provider for a in accounts}
        queue_ids = [q.pk for q in queues]
        conv_cols = ["id", "created_at", "updated_at", "external_thread_id", "subject", "is_public", "language",
                     "status", "priority", "priority_bucket", "is_spam", "first_sentiment", "last_sentiment",
                     "cycle_started_at", "first_response_at", "resolved_at", "last_message_at", "last_inbound_at",
                     "last_outbound_at", "first_response_due_at", "resolution_due_at", "sla_due_at", "sla_breached",
                     "assignee_id", "channel_account_id", "customer_id", "identity_id", "last_assignee_id",
                     "queue_id"]
        msg_cols = ["id", "created_at", "updated_at", "direction", "kind", "external_id", "in_reply_to_external_id",
                    "is_bot", "text", "url", "raw", "sent_at", "send_status", "failure_reason", "send_attempts",
                    "sentiment", "sentiment_label", "language", "author_identity_id", "author_user_id",
                    "channel_account_id", "conversation_id"]
        ev_cols = ["id", "kind", "data", "created_at", "actor_id", "conversation_id"]
        max_k = max(1, int(round(messages_per * 2 - 1)))
        with Copier(conn, "inbox_conversation", conv_cols) as cc, Copier(conn, "inbox_message", msg_cols) as mc, \
                Copier(conn, "inbox_conversationevent", ev_cols) as ec, \
                Copier(conn, "inbox_conversation_tags", ["id", "conversation_id", "tag_id"]) as tc:
            tag_ids = _tags(conn)
            for i in range(1, conversations + 1):
                conv = base["inbox_conversation"] + i
                cust_n = rng.randint(1, n_customers)
                cust = base["contacts_customer"] + cust_n
                ident = base["contacts_socialidentity"] + cust_n
                acc = acc_ids[cust_n % len(acc_ids)]
                created = start + dt.timedelta(seconds=span * i / conversations)
                active = i > active_from
                k = rng.randint(1, max_k)
                q = queue_ids[rng.randrange(len(queue_ids))]
                team_agents = agents_of_team.get(team_of_queue[q]) or [a.pk for a in agents]
                assignee = "" if (active and rng.random() < 0.3) else str(team_agents[rng.randrange(len(team_agents))])
                status = STATUS_ACTIVE[rng.randrange(4)] if active else STATUS_DONE[rng.randrange(5)]
                if status == "new":
                    assignee = ""
                bucket = rng.choice((0, 1, 2, 2, 2, 3))
                s_first = SENTIMENTS[rng.randrange(6)]
                s_last = SENTIMENTS[rng.randrange(6)]
                n = rng.randint(10000, 99999)
                subject = TEXTS_IN[rng.randrange(len(TEXTS_IN))].format(n=n)
                sent = created
                last_in = last_out = None
                first_resp = None
                for j in range(k):
                    msg_id += 1
                    inbound = j % 2 == 0
                    sent = sent + dt.timedelta(minutes=rng.randint(1, 180))
                    s = ts(sent)
                    if inbound:
                        sv, sl = (s_first if j == 0 else s_last)
                        text = subject if j == 0 else TEXTS_IN[rng.randrange(len(TEXTS_IN))].format(n=n)
                        last_in = sent
                        mc.row(f"{msg_id}\t{s}\t{s}\tin\tpublic\tg{msg_id}\t\tf\t{text}\t"
                               f"https://example.social/s/{msg_id}\t{{\"id\": \"g{msg_id}\"}}\t{s}\treceived\t\t0\t"
                               f"{sv}\t{sl}\ten\t{ident}\t\\N\t{acc}\t{conv}")
                    else:
                        agent = assignee or str(team_agents[0])
                        last_out = sent
                        first_resp = first_resp or sent
                        mc.row(f"{msg_id}\t{s}\t{s}\tout\tpublic\tg{msg_id}\tg{msg_id - 1}\tf\t"
                               f"{TEXTS_OUT[rng.randrange(len(TEXTS_OUT))]}\t\t{{}}\t{s}\tsent\t\t1\t"
                               f"\\N\t\t\t\\N\t{agent}\t{acc}\t{conv}")
                n_msgs += k
                resolved = ts(sent + dt.timedelta(minutes=30)) if status in ("resolved", "closed") else "\\N"
                due = ts(end + dt.timedelta(minutes=rng.randint(-120, 24 * 60))) if active else "\\N"
                frd = ts(created + dt.timedelta(hours=1))
                rsd = ts(created + dt.timedelta(hours=24))
                cc.row("\t".join([
                    str(conv), ts(created), ts(sent), f"g{conv}", subject, "t", "en", status,
                    str(rng.randint(0, 100)), str(bucket), "f", str(s_first[0]), str(s_last[0]), ts(created),
                    ts(first_resp) if first_resp else "\\N", resolved, ts(sent),
                    ts(last_in) if last_in else "\\N", ts(last_out) if last_out else "\\N", frd, rsd, due,
                    "t" if (active and due < now_s) else "f", assignee or "\\N", str(acc), str(cust), str(ident),
                    assignee or "\\N", str(q)]))
                ev_id += 1
                ec.row(f"{ev_id}\tcreated\t{{\"channel\": \"{acc_provider[acc]}\"}}\t{ts(created)}\t\\N\t{conv}")
                n_events += 1
                if assignee:
                    ev_id += 1
                    ec.row(f"{ev_id}\tassigned\t{{\"by\": \"routing\", \"to\": \"agent\"}}\t{ts(created)}\t\\N\t{conv}")
                    n_events += 1
                if i % 10 == 0:
                    n_tags += 1
                    tc.row(f"{base['inbox_conversation_tags'] + n_tags}\t{conv}\t{tag_ids[i % len(tag_ids)]}")
                if i % 200000 == 0:
                    log(f"  {i:,} conversations, {n_msgs:,} messages")
        timings["conversations_messages"] = time.perf_counter() - t

        t = time.perf_counter()
        conn.execute("SET session_replication_role = DEFAULT")
        for definition in indexes:
            conn.execute(definition)
        timings["indexes"] = time.perf_counter() - t
        t = time.perf_counter()
        for table in tables:
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"(SELECT greatest(max(id), 1) FROM {table}))")
        conn.execute("VACUUM ANALYZE")
        timings["analyze"] = time.perf_counter() - t
        size = conn.execute("select pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
    timings["total"] = time.perf_counter() - t_all
    return {"db": db, "conversations": conversations, "messages": n_msgs, "events": n_events,
            "customers": n_customers, "tags": n_tags, "size": size, "seconds": timings}


def _tags(conn) -> list[int]:
    for name in ("billing", "delivery", "bug", "outage", "praise", "refund"):
        conn.execute("insert into inbox_tag (name) values (%s) on conflict do nothing", [name])
    return [r[0] for r in conn.execute("select id from inbox_tag order by id").fetchall()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default=BIG_DB)
    ap.add_argument("--conversations", type=int, default=1_000_000)
    ap.add_argument("--messages-per", type=float, default=5.0)
    args = ap.parse_args()
    result = generate(db=args.db, conversations=args.conversations, messages_per=args.messages_per)
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
