"""A stand-in Mastodon instance: the REST endpoints cxinbox uses, answering in
the shapes of the Mastodon API documentation (Notification, Status, Account,
Context entities; snowflake-like string ids; HTML content; Link headers;
Idempotency-Key on POST /api/v1/statuses; 401 for a revoked token)."""
from __future__ import annotations

import html
import itertools
import re

from django.utils import timezone

from .server import StandInServer


class MastodonStandIn(StandInServer):
    def __init__(self, host: str = "mastodon.example", brand_username: str = "acme", token: str = "mastodon-token"):
        super().__init__()
        self.host = host
        self.tokens = {token}
        self._ids = itertools.count(109372843234567890)
        self.accounts: dict[str, dict] = {}
        self.statuses: dict[str, dict] = {}
        self.notifications: list[dict] = []  # ascending ids
        self.posted: list[dict] = []
        self.idempotency: dict[str, str] = {}
        self.brand = self.add_account(brand_username, "Acme Support", followers=52000)

    def next_id(self) -> str:
        return str(next(self._ids))

    # --- state helpers for tests ------------------------------------------------
    def add_account(self, username: str, display_name: str = "", *, domain: str | None = None,
                    followers: int = 10) -> dict:
        account_id = self.next_id()
        acct = username if domain in (None, self.host) else f"{username}@{domain}"
        account = {
            "id": account_id, "username": username, "acct": acct, "display_name": display_name or username,
            "locked": False, "bot": False, "created_at": "2022-11-03T00:00:00.000Z", "note": "",
            "url": f"https://{domain or self.host}/@{username}", "avatar": f"https://{self.host}/avatars/{account_id}.png",
            "followers_count": followers, "following_count": 3, "statuses_count": 40,
        }
        self.accounts[account_id] = account
        return account

    def add_status(self, text: str, *, author: dict, visibility: str = "public", in_reply_to: str | None = None,
                   mention_brand: bool = True, spoiler_text: str = "", notify: bool = True) -> dict:
        status_id = self.next_id()
        parent = self.statuses.get(in_reply_to) if in_reply_to else None
        mentions = [self._mention(self.brand)] if mention_brand else []
        prefix = "".join(
            f'<span class="h-card"><a href="{m["url"]}" class="u-url mention">@<span>{m["username"]}</span></a></span> '
            for m in mentions
        )
        status = {
            "id": status_id, "uri": f"https://{self.host}/users/{author['username']}/statuses/{status_id}",
            "url": f"https://{self.host}/@{author['acct']}/{status_id}",
            "created_at": timezone.now().strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "account": author, "content": f"<p>{prefix}{html.escape(text)}</p>", "visibility": visibility,
            "sensitive": bool(spoiler_text), "spoiler_text": spoiler_text, "in_reply_to_id": in_reply_to,
            "in_reply_to_account_id": parent["account"]["id"] if parent else None,
            "mentions": mentions, "media_attachments": [], "tags": [], "emojis": [], "language": "en",
            "replies_count": 0, "reblogs_count": 0, "favourites_count": 0,
        }
        with self.lock:
            self.statuses[status_id] = status
            if notify and mention_brand:
                self.notifications.append({"id": self.next_id(), "type": "mention",
                                           "created_at": status["created_at"], "account": author, "status": status})
        return status

    def add_other_notification(self, kind: str, author: dict) -> dict:
        n = {"id": self.next_id(), "type": kind, "created_at": timezone.now().isoformat(), "account": author}
        with self.lock:
            self.notifications.append(n)
        return n

    def _mention(self, account: dict) -> dict:
        return {"id": account["id"], "username": account["username"], "acct": account["acct"], "url": account["url"]}

    # --- API ------------------------------------------------------------------------
    def dispatch(self, method, path, query, body, headers):
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return 401, {"error": "The access token is invalid"}, {}
        if method == "GET" and path == "/api/v1/accounts/verify_credentials":
            return 200, self.brand, {}
        m = re.fullmatch(r"/api/v1/accounts/(\d+)", path)
        if method == "GET" and m:
            account = self.accounts.get(m.group(1))
            return (200, account, {}) if account else (404, {"error": "Record not found"}, {})
        if method == "GET" and path == "/api/v1/notifications":
            return self._notifications(query)
        m = re.fullmatch(r"/api/v1/statuses/(\d+)(/context)?", path)
        if method == "GET" and m:
            status = self.statuses.get(m.group(1))
            if status is None:
                return 404, {"error": "Record not found"}, {}
            if m.group(2):
                return 200, {"ancestors": [], "descendants": self._descendants(status["id"])}, {}
            return 200, status, {}
        if method == "POST" and path == "/api/v1/statuses":
            return self._post_status(body or {}, headers)
        return 404, {"error": f"no route {method} {path}"}, {}

    def _notifications(self, query):
        types = query.get("types[]") or []
        limit = min(int(query.get("limit", ["15"])[0]), 40)
        since_id = int(query.get("since_id", ["0"])[0])
        max_id = int(query.get("max_id", [str(10 ** 30)])[0])
        with self.lock:
            items = [n for n in self.notifications
                     if since_id < int(n["id"]) < max_id and (not types or n["type"] in types)]
        page = sorted(items, key=lambda n: int(n["id"]), reverse=True)[:limit]
        headers = {}
        if page:
            base = f"https://{self.host}/api/v1/notifications"
            headers["Link"] = (f'<{base}?max_id={page[-1]["id"]}>; rel="next", '
                               f'<{base}?min_id={page[0]["id"]}>; rel="prev"')
        return 200, page, headers

    def _descendants(self, status_id: str) -> list[dict]:
        out, frontier = [], [status_id]
        while frontier:
            parent = frontier.pop()
            children = [s for s in self.statuses.values() if s.get("in_reply_to_id") == parent]
            out.extend(children)
            frontier.extend(c["id"] for c in children)
        return out

    def _post_status(self, body, headers):
        key = headers.get("Idempotency-Key")
        with self.lock:
            if key and key in self.idempotency:
                return 200, self.statuses[self.idempotency[key]], {}
        text = body.get("status") or ""
        if not text:
            return 422, {"error": "Validation failed: Text can't be blank"}, {}
        if len(text) > 500:
            return 422, {"error": "Validation failed: Text character limit of 500 exceeded"}, {}
        reply_to = body.get("in_reply_to_id")
        if reply_to and reply_to not in self.statuses:
            return 404, {"error": "Record not found"}, {}
        visibility = body.get("visibility", "public")
        mentioned = [a for a in self.accounts.values() if f"@{a['acct']}" in text]
        status_id = self.next_id()
        status = {
            "id": status_id, "uri": f"https://{self.host}/users/{self.brand['username']}/statuses/{status_id}",
            "url": f"https://{self.host}/@{self.brand['acct']}/{status_id}",
            "created_at": timezone.now().strftime("%Y-%m-%dT%H:%M:%S.000Z"), "account": self.brand,
            "content": f"<p>{html.escape(text)}</p>", "visibility": visibility,
            "spoiler_text": body.get("spoiler_text", ""), "sensitive": bool(body.get("spoiler_text")),
            "in_reply_to_id": reply_to,
            "in_reply_to_account_id": self.statuses[reply_to]["account"]["id"] if reply_to else None,
            "mentions": [self._mention(a) for a in mentioned], "media_attachments": [], "tags": [], "emojis": [],
        }
        with self.lock:
            self.statuses[status_id] = status
            self.posted.append({**status, "text": text})
            if key:
                self.idempotency[key] = status_id
        return 200, status, {}
