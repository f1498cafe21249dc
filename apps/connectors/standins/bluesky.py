"""A stand-in Bluesky PDS + AppView: the XRPC methods cxinbox calls, in the
shapes of the atproto lexicons (createSession with JWT access tokens whose exp
the SDK reads, listNotifications with reason/record/indexedAt and a cursor,
getPosts, getPostThread, createRecord returning uri + cid)."""
from __future__ import annotations

import base64
import hashlib
import itertools
import json
import time

from django.utils import timezone

from .server import StandInServer


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def make_jwt(did: str, scope: str, ttl: int) -> str:
    now = int(time.time())
    payload = {"scope": scope, "sub": did, "iat": now, "exp": now + ttl, "aud": "did:web:standin.invalid",
               "jti": hashlib.sha1(f"{did}{scope}{time.time_ns()}".encode()).hexdigest()}
    return f"{_b64({'typ': 'at+jwt', 'alg': 'ES256K'})}.{_b64(payload)}.c2lnbmF0dXJl"


def make_cid(seed: str) -> str:
    digest = base64.b32encode(hashlib.sha256(seed.encode()).digest()).decode().lower().rstrip("=")
    return f"bafyrei{digest}"


class BlueskyStandIn(StandInServer):
    def __init__(self, handle: str = "acme.bsky.social", password: str = "app-pass-1234"):
        super().__init__()
        self.passwords = {handle: password}
        self.brand = self.add_actor(handle, "Acme Support")
        self.access_tokens: set[str] = set()
        self.sessions_created = 0
        self.posts: dict[str, dict] = {}  # uri -> post view
        self.notifications: list[dict] = []  # oldest first
        self.created: list[dict] = []  # records the brand created
        self._seq = itertools.count(1)
        self._clock = itertools.count(1)

    def add_actor(self, handle: str, name: str = "") -> dict:
        did = "did:plc:" + hashlib.sha256(handle.encode()).hexdigest()[:24]
        return {"did": did, "handle": handle, "displayName": name or handle,
                "avatar": f"https://cdn.bsky.app/img/avatar/plain/{did}/a@jpeg", "labels": [],
                "createdAt": "2023-04-01T00:00:00.000Z"}

    def _now(self) -> str:
        # strictly increasing timestamps so tests do not depend on the clock's resolution
        base = timezone.now().replace(microsecond=0)
        return (base + timezone.timedelta(milliseconds=next(self._clock))).isoformat(timespec="milliseconds").replace(
            "+00:00", "Z")

    def _post(self, author: dict, text: str, reply_to: str | None, rkey: str | None = None) -> dict:
        rkey = rkey or f"3l{next(self._seq):011d}"
        uri = f"at://{author['did']}/app.bsky.feed.post/{rkey}"
        record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": self._now(), "langs": ["en"]}
        if reply_to:
            parent = self.posts[reply_to]
            root = parent["record"].get("reply", {}).get("root") or {"uri": parent["uri"], "cid": parent["cid"]}
            record["reply"] = {"root": root, "parent": {"uri": parent["uri"], "cid": parent["cid"]}}
        post = {"uri": uri, "cid": make_cid(uri + text), "author": author, "record": record,
                "indexedAt": record["createdAt"], "replyCount": 0, "repostCount": 0, "likeCount": 0, "labels": []}
        with self.lock:
            self.posts[uri] = post
        return post

    def add_post(self, text: str, *, author: dict, reply_to: str | None = None, reason: str | None = "mention") -> dict:
        """A customer's post; `reason` is how it reaches the brand's notifications."""
        post = self._post(author, text, reply_to)
        if reason:
            with self.lock:
                self.notifications.append({
                    "uri": post["uri"], "cid": post["cid"], "author": author, "reason": reason,
                    "record": post["record"], "isRead": False, "indexedAt": post["indexedAt"], "labels": [],
                })
        return post

    def add_like(self, author: dict, subject_uri: str) -> None:
        with self.lock:
            self.notifications.append({
                "uri": f"at://{author['did']}/app.bsky.feed.like/3lk{next(self._seq)}", "cid": make_cid("like"),
                "author": author, "reason": "like", "reasonSubject": subject_uri,
                "record": {"$type": "app.bsky.feed.like", "subject": {"uri": subject_uri, "cid": "x"},
                           "createdAt": self._now()},
                "isRead": False, "indexedAt": self._now(), "labels": []})

    def replies_to(self, uri: str) -> list[dict]:
        return [r for r in self.created if r["record"].get("reply", {}).get("parent", {}).get("uri") == uri]

    # --- XRPC ---------------------------------------------------------------------
    def dispatch(self, method, path, query, body, headers):
        if not path.startswith("/xrpc/"):
            return 404, {"error": "NotFound", "message": path}, {}
        nsid = path[len("/xrpc/"):]
        if nsid == "com.atproto.server.createSession" and method == "POST":
            return self._create_session(body or {})
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.access_tokens:
            return 401, {"error": "AuthenticationRequired", "message": "Invalid or expired token"}, {}
        if nsid == "app.bsky.notification.listNotifications":
            return self._list_notifications(query)
        if nsid == "app.bsky.feed.getPosts":
            return 200, {"posts": [self.posts[u] for u in query.get("uris", []) if u in self.posts]}, {}
        if nsid == "app.bsky.feed.getPostThread":
            uri = query.get("uri", [""])[0]
            if uri not in self.posts:
                return 400, {"error": "NotFound", "message": f"Post not found: {uri}"}, {}
            replies = [{"$type": "app.bsky.feed.defs#threadViewPost", "post": p, "replies": []}
                       for p in self.posts.values() if p["record"].get("reply", {}).get("parent", {}).get("uri") == uri]
            return 200, {"thread": {"$type": "app.bsky.feed.defs#threadViewPost", "post": self.posts[uri],
                                    "replies": replies}}, {}
        if nsid == "com.atproto.repo.createRecord" and method == "POST":
            return self._create_record(body or {})
        return 501, {"error": "MethodNotImplemented", "message": nsid}, {}

    def _create_session(self, body):
        identifier, password = body.get("identifier"), body.get("password")
        if self.passwords.get(identifier) != password:
            return 401, {"error": "AuthenticationRequired", "message": "Invalid identifier or password"}, {}
        access = make_jwt(self.brand["did"], "com.atproto.appPass", 7200)
        with self.lock:
            self.access_tokens.add(access)
            self.sessions_created += 1
        return 200, {"did": self.brand["did"], "handle": identifier, "accessJwt": access,
                     "refreshJwt": make_jwt(self.brand["did"], "com.atproto.refresh", 86400 * 60),
                     "active": True}, {}

    def _list_notifications(self, query):
        limit = int(query.get("limit", ["50"])[0])
        reasons = set(query.get("reasons", []))
        start = int(query.get("cursor", ["0"])[0])
        with self.lock:
            items = [n for n in reversed(self.notifications) if not reasons or n["reason"] in reasons]
        page = items[start:start + limit]
        out = {"notifications": page}
        if start + limit < len(items):
            out["cursor"] = str(start + limit)
        return 200, out, {}

    def _create_record(self, body):
        if body.get("repo") != self.brand["did"]:
            return 400, {"error": "InvalidRequest", "message": "repo must be the session's DID"}, {}
        record = body.get("record") or {}
        reply = record.get("reply")
        if reply and reply["parent"]["uri"] not in self.posts:
            return 400, {"error": "InvalidRequest", "message": "parent not found"}, {}
        if len(record.get("text", "")) > 300:
            return 400, {"error": "InvalidRequest", "message": "Record/text must not be longer than 300 graphemes"}, {}
        post = self._post(self.brand, record.get("text", ""), None)
        post["record"] = {**record}
        with self.lock:
            self.created.append({"uri": post["uri"], "record": record})
        return 200, {"uri": post["uri"], "cid": post["cid"], "validationStatus": "valid"}, {}
