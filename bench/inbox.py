"""Inbox read paths on the big data set: the conversation list (API and page)
and a thread (API and page), as an agent, a supervisor and an admin. Requests
go through Django's full stack in this process (middleware, auth, views,
templates, serialisers) with the test client; server time, no network."""
from __future__ import annotations

import random
import time

from .common import summary_ms


def _timed(client, url: str, n: int, warmup: int = 2) -> tuple[dict, int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    slow = False
    for _ in range(warmup):
        t = time.perf_counter()
        resp = client.get(url)
        slow = slow or time.perf_counter() - t > 1.0
        assert resp.status_code == 200, (url, resp.status_code, resp.content[:300])
    if slow:
        n = min(n, 5)  # seconds per request: a few samples tell the story
    times = []
    with CaptureQueriesContext(connection) as ctx:
        resp = client.get(url)
    queries = len(ctx.captured_queries)
    for _ in range(n):
        t = time.perf_counter()
        resp = client.get(url)
        times.append(time.perf_counter() - t)
    return summary_ms(times), queries, len(resp.content)


def _timed_many(client, urls: list[str]) -> tuple[dict, int]:
    """Each url once (a different thread each time: no warm rows for the next)."""
    times = []
    for url in urls:
        t = time.perf_counter()
        resp = client.get(url)
        times.append(time.perf_counter() - t)
        assert resp.status_code == 200, (url, resp.status_code)
    return summary_ms(times), len(urls)


def inbox_bench(*, n: int = 60, threads: int = 60) -> list[dict]:
    from django.db.models import Count
    from django.test import Client
    from django.urls import reverse

    from apps.accounts.models import User
    from apps.inbox.models import Conversation, Message
    from apps.inbox.selectors import conversations_visible_to

    from apps.connectors.providers import import_all

    import_all()  # as the web entry points do at start (cxinbox/wsgi.py, asgi.py)
    agent = User.objects.filter(role="agent", teams__isnull=False).order_by("pk").first()
    supervisor = User.objects.filter(role="supervisor").order_by("pk").first()
    admin = User.objects.filter(role="admin").order_by("pk").first()
    totals = {"conversations": Conversation.objects.count(), "messages": Message.objects.count()}
    rng = random.Random(5)
    out = []
    for who, user in (("agent", agent), ("supervisor", supervisor), ("admin", admin)):
        client = Client()
        client.force_login(user)
        cases = [
            ("API list", "/api/v1/conversations/"),
            ("API list, open, mine", "/api/v1/conversations/?view=mine"),
            ("API list, negative sentiment", "/api/v1/conversations/?view=all&sentiment=negative"),
            ("page list (All)", reverse("inbox:list")),
            ("page list (Unassigned)", reverse("inbox:list") + "?view=unassigned"),
            ("page list (Resolved)", reverse("inbox:list") + "?view=resolved"),
            ("page list, search", reverse("inbox:list") + "?q=refund"),
        ]
        if who != "agent":
            cases = [c for c in cases if not c[0].startswith("page list (") or "All" in c[0]]
        for name, url in cases:
            stats, queries, size = _timed(client, url, n)
            out.append({"who": who, "what": name, "url": url, **stats, "queries": queries, "bytes": size})
        if who == "agent":
            visible = conversations_visible_to(user)
            hi = visible.order_by("-id").values_list("id", flat=True).first()
            ids = []
            while len(ids) < threads:
                cid = rng.randint(1, hi)
                if visible.filter(pk=cid).exists():
                    ids.append(cid)
            sizes = Message.objects.filter(conversation_id__in=ids).values("conversation_id").annotate(n=Count("id"))
            mean_msgs = sum(s["n"] for s in sizes) / max(1, len(ids))
            for name, make in (("API thread", lambda c: f"/api/v1/conversations/{c}/messages/"),
                               ("page thread", lambda c: reverse("inbox:detail", args=[c]))):
                _timed(client, make(ids[0]), 1)
                stats, count = _timed_many(client, [make(c) for c in ids])
                _, queries, size = _timed(client, make(ids[0]), 0, warmup=0)
                out.append({"who": who, "what": f"{name} ({mean_msgs:.1f} messages)", "url": make(ids[0]),
                            **stats, "queries": queries, "bytes": size})
    for row in out:
        row.update(totals)
    return out
