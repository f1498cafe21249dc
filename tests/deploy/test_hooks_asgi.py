"""/hooks/ under ASGI (cxinbox/asgi_hooks.py): the webhook requests take Django's sync
path in one worker thread, through HOOKS_MIDDLEWARE, and leave no database connection
checked out in that thread. Driven as uvicorn drives an ASGI app."""
import asyncio
import base64
import hashlib
import hmac
import json

import psycopg
import pytest
from django.db import connections

from apps.connectors import push_writer
from apps.connectors.models import ChannelAccount, PushDelivery
from apps.connectors.push_writer import push_writer_disable
from apps.connectors.selectors import push_account_cache_enable
from cxinbox.asgi_hooks import HooksHandler, http_router
from tests.connectors.hook_accounts import CONSUMER_SECRET, twitter  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_replay_cache():
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _hooks_handler_state_dropped():
    """A HooksHandler turns on the process's push writer and account cache (as the web tier
    runs): off again after each test, the writer's connection closed."""
    yield
    push_writer_disable()
    push_account_cache_enable(0)


def _call(app, path: str, body: bytes = b"", method: str = "POST", headers: list | None = None,
          query: bytes = b"", on_start=None) -> dict:
    return asyncio.run(_acall(app, path, body, method, headers, query, on_start))


async def _acall(app, path: str, body: bytes = b"", method: str = "POST", headers: list | None = None,
                 query: bytes = b"", on_start=None) -> dict:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
             "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode()), *(headers or [])],
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start" and on_start is not None:
            on_start()  # what the sender could see the moment its answer starts
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return {"status": start["status"], "headers": {k.decode().lower(): v.decode() for k, v in start["headers"]},
            "body": b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")}


def _delivery(tweet_id: str, text: str = "@acme my router is dead") -> tuple[bytes, list]:
    tweet = {"created_at": "Mon Nov 23 08:00:00 +0000 2026", "id_str": tweet_id, "text": text,
             "user": {"id_str": "42", "screen_name": "rita", "name": "Rita", "followers_count": 8}}
    body = json.dumps({"for_user_id": "783214", "tweet_create_events": [tweet]}).encode()
    sig = "sha256=" + base64.b64encode(hmac.new(CONSUMER_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return body, [(b"x-twitter-webhooks-signature", sig.encode())]


@pytest.fixture
def connections_not_kept():
    """As in production (the web tier's pool: CONN_MAX_AGE 0, deploy/gunicorn.conf.py)."""
    config = connections.settings["default"]
    old = config["CONN_MAX_AGE"]
    config["CONN_MAX_AGE"] = 0
    yield
    config["CONN_MAX_AGE"] = old


def test_a_signed_delivery_is_stored_through_the_hooks_handler_with_the_whole_middleware(twitter,
                                                                                         connections_not_kept):
    handler = HooksHandler(threads=2)
    body, headers = _delivery("3001")
    resp = _call(handler, f"/hooks/twitter/{twitter.pk}/", body, headers=headers)
    assert resp["status"] == 200 and json.loads(resp["body"]) == {"accepted": 1}
    assert resp["headers"]["content-length"] == str(len(resp["body"]))  # not chunked: the sender reuses the connection
    assert PushDelivery.objects.filter(account=twitter).count() == 1
    # the hooks' middleware ran (security headers, the request id), not the pages' (no session
    # cookie, no CSP: a network's signed POST has no use for them)
    assert resp["headers"]["x-content-type-options"] == "nosniff"
    assert resp["headers"].get("x-request-id")
    assert "set-cookie" not in resp["headers"] and "content-security-policy" not in resp["headers"]
    nul = _call(handler, f"/hooks/twitter/{twitter.pk}/", body, headers=headers, query=b"x=%00")
    assert nul["status"] == 400  # a NUL in the query is refused before the view, as on every page

    forged = _call(handler, f"/hooks/twitter/{twitter.pk}/", body, headers=[(b"x-twitter-webhooks-signature",
                                                                              b"sha256=forged")])
    assert forged["status"] == 401 and json.loads(forged["body"]) == {"detail": "The signature does not match."}
    assert _call(handler, "/hooks/nowhere/", b"{}")["status"] == 404

    # the worker threads hold no database connection between requests (the pool gets it back)
    def connection_held():
        return connections["default"].connection is not None

    held = [handler.executor.submit(connection_held).result() for _ in range(4)]
    assert held == [False] * 4
    handler.executor.shutdown()


def test_the_router_sends_only_hooks_to_the_hooks_handler():
    seen = []

    def app(name):
        async def run(scope, receive, send):
            seen.append(name)
        return run

    router = http_router(app("hooks"), app("django"))
    for path in ("/hooks/twitter/1/", "/inbox/", "/api/v1/conversations/", "/hooksmith/"):
        asyncio.run(router({"type": "http", "path": path}, None, None))
    assert seen == ["hooks", "django", "django", "django"]


def _stored_tweet_ids() -> set[str]:
    """From a connection of its own, as the sender's next look would see it: committed rows only."""
    dsn = connections["default"].get_connection_params()
    with psycopg.connect(**{k: v for k, v in dsn.items() if k in ("dbname", "user", "host", "port", "password")},
                         autocommit=True) as conn:
        rows = conn.execute("select mentions from connectors_pushdelivery").fetchall()
    return {m["external_id"] for (mentions,) in rows for m in mentions}


def _gather(handler, account, items, on_start=None) -> list[dict]:
    async def run():
        return await asyncio.gather(*[_acall(handler, f"/hooks/twitter/{account.pk}/", body, headers=headers,
                                             on_start=on_start) for body, headers in items])
    return asyncio.run(run())


def test_deliveries_arriving_together_are_committed_together_and_each_answered_after_its_commit(
        twitter, connections_not_kept):
    """The web tier's group commit (apps/connectors/push_writer.py): 40 deliveries at once are
    all taken, each is committed before its 200 goes out, and they share transactions."""
    handler = HooksHandler(threads=16)
    items = [_delivery(str(4000 + i)) for i in range(40)]
    committed_at_answer = []
    answers = _gather(handler, twitter, items, on_start=lambda: committed_at_answer.append(len(_stored_tweet_ids())))
    handler.executor.shutdown()
    assert [a["status"] for a in answers] == [200] * 40
    assert _stored_tweet_ids() == {str(4000 + i) for i in range(40)}
    assert min(committed_at_answer) >= 1 and all(n >= 1 for n in committed_at_answer)
    deliveries = list(PushDelivery.objects.filter(account=twitter))
    assert len(deliveries) == 40 and len({d.request_id for d in deliveries}) == 40  # each keeps its request's id
    with connections["default"].cursor() as cursor:
        cursor.execute("select count(distinct xmin::text) from connectors_pushdelivery")
        transactions = cursor.fetchone()[0]
    assert transactions < 40
    twitter.refresh_from_db()
    assert twitter.last_push_at is not None  # the health page's "last push", written once for the batch


def test_each_answer_waits_for_its_own_commit(twitter, connections_not_kept):
    """Stored before the 2xx, one by one: at the moment each answer starts, its tweet is committed."""
    handler = HooksHandler(threads=8)
    seen = []
    for i in range(5):
        body, headers = _delivery(str(4100 + i))
        resp = _call(handler, f"/hooks/twitter/{twitter.pk}/", body, headers=headers,
                     on_start=lambda i=i: seen.append(str(4100 + i) in _stored_tweet_ids()))
        assert resp["status"] == 200
    handler.executor.shutdown()
    assert seen == [True] * 5


@pytest.fixture
def refused_by_postgresql():
    """A trigger that makes PostgreSQL refuse one delivery's row, as a constraint would."""
    with connections["default"].cursor() as cursor:
        cursor.execute("""
            create function cx_test_refuse_poison() returns trigger language plpgsql as $$
            begin
              if new.mentions::text like '%poison%' then raise exception 'refused by the test trigger'; end if;
              return new;
            end $$;
            create trigger cx_test_refuse_poison before insert on connectors_pushdelivery
              for each row execute function cx_test_refuse_poison();""")
    yield
    with connections["default"].cursor() as cursor:
        cursor.execute("drop trigger if exists cx_test_refuse_poison on connectors_pushdelivery;"
                       "drop function if exists cx_test_refuse_poison();")


def test_a_row_postgresql_refuses_fails_only_its_own_delivery_and_its_retry_is_taken(
        twitter, connections_not_kept, refused_by_postgresql):
    handler = HooksHandler(threads=16)
    items = [_delivery(str(4200 + i)) for i in range(11)] + [_delivery("4299", "@acme poison")]
    answers = _gather(handler, twitter, items)
    assert [a["status"] for a in answers] == [200] * 11 + [500]
    assert _stored_tweet_ids() == {str(4200 + i) for i in range(11)}
    with connections["default"].cursor() as cursor:  # the cause is gone: the network's retry of the same delivery
        cursor.execute("drop trigger cx_test_refuse_poison on connectors_pushdelivery")
    retry = _call(handler, f"/hooks/twitter/{twitter.pk}/", items[-1][0], headers=items[-1][1])
    handler.executor.shutdown()
    assert retry["status"] == 200  # not a "replay": the failed attempt gave its claim back
    assert "4299" in _stored_tweet_ids()


def test_a_stalled_database_answers_503_with_retry_after_and_loses_nothing(twitter, connections_not_kept,
                                                                           monkeypatch):
    monkeypatch.setattr(push_writer, "STORE_TIMEOUT_SECONDS", 0.5)
    handler = HooksHandler(threads=4)
    warm_body, warm_headers = _delivery("4300")
    assert _call(handler, f"/hooks/twitter/{twitter.pk}/", warm_body, headers=warm_headers)["status"] == 200
    dsn = connections["default"].get_connection_params()
    holder = psycopg.connect(**{k: v for k, v in dsn.items() if k in ("dbname", "user", "host", "port", "password")})
    holder.execute("lock table connectors_pushdelivery in access exclusive mode")  # PostgreSQL stalls the INSERT
    body, headers = _delivery("4301")
    try:
        stalled = _call(handler, f"/hooks/twitter/{twitter.pk}/", body, headers=headers)
    finally:
        holder.rollback()
        holder.close()
    assert stalled["status"] == 503 and stalled["headers"]["retry-after"] == "5"
    assert json.loads(stalled["body"]) == {"detail": "The delivery could not be stored in time; send it again."}
    retry = _call(handler, f"/hooks/twitter/{twitter.pk}/", body, headers=headers)
    handler.executor.shutdown()
    assert retry["status"] == 200  # the sender's retry is taken, not refused as a replay
    assert "4301" in _stored_tweet_ids()  # (stored twice at most: ingest keeps one message per tweet)


def test_the_web_tier_keeps_an_account_a_few_seconds_then_sees_it_deactivated(twitter, connections_not_kept,
                                                                                settings):
    settings.PUSH_ACCOUNT_CACHE_SECONDS = 0.5
    handler = HooksHandler(threads=2)
    body, headers = _delivery("4400")
    assert _call(handler, f"/hooks/twitter/{twitter.pk}/", body, headers=headers)["status"] == 200
    ChannelAccount.objects.filter(pk=twitter.pk).update(is_active=False)
    body, headers = _delivery("4401")
    assert _call(handler, f"/hooks/twitter/{twitter.pk}/", body, headers=headers)["status"] == 200  # within 0.5 s
    import time

    time.sleep(0.6)
    body, headers = _delivery("4402")
    gone = _call(handler, f"/hooks/twitter/{twitter.pk}/", body, headers=headers)
    handler.executor.shutdown()
    assert gone["status"] == 404 and "4402" not in _stored_tweet_ids()


def _other_backends_terminated() -> int:
    """Every other client connection to the test database dropped by PostgreSQL (the request
    threads gave theirs back: what is left is the push writer's); how many there were."""
    with connections["default"].cursor() as cursor:
        cursor.execute("select count(pg_terminate_backend(pid)) from pg_stat_activity where datname = "
                       "current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'")
        return cursor.fetchone()[0]


def test_the_writer_keeps_its_connection_and_a_lost_one_costs_no_delivery(twitter, connections_not_kept):
    """Between batches the writer keeps its connection (taken from the pool for each batch, the
    checkout was a tenth of the web tier's CPU); when PostgreSQL drops it (a restart, an admin's
    pg_terminate_backend), the next delivery is stored on a new connection, not answered 500."""
    handler = HooksHandler(threads=2)
    body, headers = _delivery("4400")
    assert _call(handler, f"/hooks/twitter/{twitter.pk}/", body, headers=headers)["status"] == 200
    # the writer's, kept after its batch (at least: a backend an earlier test left open counts too)
    assert _other_backends_terminated() >= 1
    body, headers = _delivery("4401")
    resp = _call(handler, f"/hooks/twitter/{twitter.pk}/", body, headers=headers)
    handler.executor.shutdown()
    assert resp["status"] == 200
    assert {"4400", "4401"} <= _stored_tweet_ids()


def test_a_signed_tweet_holding_an_integer_beyond_64_bits_is_stored(twitter, connections_not_kept):
    """The batch's fast JSON writer (orjson) cannot write such an integer; the delivery and the
    ones beside it are stored all the same, the number kept exactly."""
    handler = HooksHandler(threads=8)
    tweet = {"created_at": "Mon Nov 23 08:00:00 +0000 2026", "id_str": "4500", "text": "@acme huge",
             "user": {"id_str": "42", "screen_name": "rita", "name": "Rita", "followers_count": 8},
             "entities": {"weird": 123456789012345678901234567890}}
    body = json.dumps({"for_user_id": "783214", "tweet_create_events": [tweet]}).encode()
    sig = "sha256=" + base64.b64encode(hmac.new(CONSUMER_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    items = [(body, [(b"x-twitter-webhooks-signature", sig.encode())])] + [_delivery(str(4501 + i)) for i in range(5)]
    answers = _gather(handler, twitter, items)
    handler.executor.shutdown()
    assert [a["status"] for a in answers] == [200] * 6
    assert _stored_tweet_ids() == {"4500", *(str(4501 + i) for i in range(5))}
    with connections["default"].cursor() as cursor:
        cursor.execute("select mentions::text from connectors_pushdelivery where mentions::text like '%%4500%%'")
        assert "123456789012345678901234567890" in cursor.fetchone()[0]
