"""A stand-in for the Reddit endpoints praw calls for cxinbox: the OAuth token
endpoint (script app password grant, refresh grant), the inbox listings
/message/mentions and /message/comments (Listing of t1 things with the inbox
fields: subject, type, context, parent_id, link_title, was_comment), /api/comment
and /user/<name>/comments. One server plays both oauth_url and reddit_url."""
from __future__ import annotations

import base64
import itertools
import re
import time

from .server import StandInServer


def _base36(n: int) -> str:
    chars = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = chars[r] + out
    return out or "0"


class RedditStandIn(StandInServer):
    def __init__(self, username: str = "acme_support", password: str = "hunter2",
                 client_id: str = "cid", client_secret: str = "csecret"):
        super().__init__()
        self.username, self.password = username, password
        self.client_id, self.client_secret = client_id, client_secret
        self.refresh_tokens = {"refresh-ok"}
        self.tokens: set[str] = set()
        self.items: list[dict] = []  # inbox items, oldest first
        self.comments: dict[str, dict] = {}  # fullname -> comment data
        self.posted: list[dict] = []
        self._ids = itertools.count(36 ** 6)
        self._clock = itertools.count(int(time.time()) - 10000)
        self.link_id = "1abcde"

    def next_id(self) -> str:
        return _base36(next(self._ids))

    def add_inbox_comment(self, body: str, *, author: str, kind: str = "username_mention",
                          parent_id: str | None = None, created_utc: float | None = None) -> dict:
        cid = self.next_id()
        subject = {"username_mention": "username mention", "comment_reply": "comment reply",
                   "post_reply": "post reply"}[kind]
        data = {
            "first_message": None, "first_message_name": None, "subreddit": "acmehelp", "likes": None,
            "replies": "", "author_fullname": f"t2_{_base36(abs(hash(author)) % 10 ** 8)}", "id": cid,
            "subject": subject, "score": 1, "author": author, "num_comments": 2, "parent_id": parent_id or f"t3_{self.link_id}",
            "subreddit_name_prefixed": "r/acmehelp", "new": True, "type": kind, "body": body,
            "link_title": "Acme router keeps dropping wifi", "dest": self.username, "was_comment": True,
            "body_html": f"&lt;div class=\"md\"&gt;&lt;p&gt;{body}&lt;/p&gt;&lt;/div&gt;", "name": f"t1_{cid}",
            "created": created_utc or float(next(self._clock)), "created_utc": created_utc or float(next(self._clock)),
            "context": f"/r/acmehelp/comments/{self.link_id}/acme_router_keeps_dropping_wifi/{cid}/?context=3",
            "distinguished": None,
        }
        data["created"] = data["created_utc"]
        with self.lock:
            self.items.append(data)
            self.comments[data["name"]] = data
        return data

    # --- API ------------------------------------------------------------------------
    def dispatch(self, method, path, query, body, headers):
        if path == "/api/v1/access_token" and method == "POST":
            return self._token(body or {}, headers)
        auth = headers.get("Authorization", "")
        if not auth.lower().startswith("bearer ") or auth[7:] not in self.tokens:
            return 401, {"message": "Unauthorized", "error": 401}, {"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'}
        m = re.fullmatch(r"/message/(mentions|comments)/?", path)
        if method == "GET" and m:
            kinds = {"mentions": {"username_mention"}, "comments": {"comment_reply", "post_reply"}}[m.group(1)]
            return self._listing([d for d in reversed(self.items) if d["type"] in kinds], query)
        m = re.fullmatch(r"/user/([^/]+)/comments/?", path)
        if method == "GET" and m:
            return self._listing([d for d in reversed(self.posted) if d["author"] == m.group(1)], query)
        if method == "POST" and path.rstrip("/") == "/api/comment":
            return self._comment(body or {})
        return 404, {"message": "Not Found", "error": 404}, {}

    def _token(self, body, headers):
        basic = headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if basic != expected:
            return 401, {"message": "Unauthorized", "error": 401}, {}
        grant = body.get("grant_type")
        if grant == "password" and (body.get("username"), body.get("password")) != (self.username, self.password):
            return 200, {"error": "invalid_grant"}, {}
        if grant == "refresh_token" and body.get("refresh_token") not in self.refresh_tokens:
            return 200, {"error": "invalid_grant"}, {}
        token = f"tok-{time.time_ns()}"
        with self.lock:
            self.tokens.add(token)
        return 200, {"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"}, {}

    def _listing(self, items, query):
        limit = int(query.get("limit", ["25"])[0])
        after = query.get("after", [None])[0]
        start = 0
        if after:
            names = [d["name"] for d in items]
            start = names.index(after) + 1 if after in names else len(items)
        page = items[start:start + limit]
        return 200, {"kind": "Listing", "data": {
            "after": page[-1]["name"] if start + limit < len(items) and page else None, "before": None,
            "dist": len(page), "modhash": None, "geo_filter": "",
            "children": [{"kind": "t1", "data": d} for d in page]}}, {}

    def _comment(self, body):
        thing_id, text = body.get("thing_id", ""), body.get("text", "")
        if thing_id.startswith("t1_") and thing_id not in self.comments:
            return 200, {"json": {"errors": [["DELETED_COMMENT", "that comment has been deleted", "parent"]]}}, {}
        if not text:
            return 200, {"json": {"errors": [["NO_TEXT", "we need something here", "text"]]}}, {}
        cid = self.next_id()
        data = {"id": cid, "name": f"t1_{cid}", "author": self.username, "body": text, "parent_id": thing_id,
                "link_id": f"t3_{self.link_id}", "subreddit": "acmehelp", "created_utc": float(next(self._clock)),
                "permalink": f"/r/acmehelp/comments/{self.link_id}/acme_router_keeps_dropping_wifi/{cid}/",
                "replies": "", "score": 1}
        with self.lock:
            self.posted.append(data)
            self.comments[data["name"]] = data
        return 200, {"json": {"errors": [], "data": {"things": [{"kind": "t1", "data": data}]}}}, {}
