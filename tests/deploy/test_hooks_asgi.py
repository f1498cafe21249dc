"""/hooks/ under ASGI (cxinbox/asgi_hooks.py): the webhook requests take Django's sync
path in one worker thread, through HOOKS_MIDDLEWARE, and leave no database connection
checked out in that thread. Driven as uvicorn drives an ASGI app."""
import asyncio
import base64
import hashlib
import hmac
import json

import pytest
from django.db import connections

from apps.connectors.models import PushDelivery
from cxinbox.asgi_hooks import HooksHandler, http_router
from tests.connectors.hook_accounts import CONSUMER_SECRET, twitter  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_replay_cache():
    from django.core.cache import cache

    cache.clear()


def _call(app, path: str, body: bytes = b"", method: str = "POST", headers: list | None = None,
          query: bytes = b"") -> dict:
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
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return {"status": start["status"], "headers": {k.decode().lower(): v.decode() for k, v in start["headers"]},
            "body": b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")}


def _delivery(tweet_id: str) -> tuple[bytes, list]:
    tweet = {"created_at": "Mon Nov 23 08:00:00 +0000 2026", "id_str": tweet_id, "text": "@acme my router is dead",
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
