"""A stand-in for the Twitter API v2 endpoints cxinbox uses, answering in the
shapes of the recorded responses in shared/fixtures/twitter/ (data, includes,
meta with newest_id / oldest_id / next_token)."""
from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from urllib.parse import unquote

from django.utils import timezone

from .server import StandInServer

_SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "twitter"
# shared/ beside the clone when present, else the copy bundled here (same file).
FIXTURES = _SHARED if (_SHARED / "get_users_mentions.json").exists() else Path(__file__).resolve().parent / "fixtures"


class TwitterStandIn(StandInServer):
    def __init__(self, brand_id: str = "783214", brand_username: str = "acme"):
        super().__init__()
        self.brand_id, self.brand_username = brand_id, brand_username
        self.users: dict[str, dict] = {
            brand_id: {"id": brand_id, "username": brand_username, "name": "Acme",
                       "public_metrics": {"followers_count": 100000}}
        }
        self.tweets: dict[str, dict] = {}
        self.mention_ids: list[int] = []  # ascending
        self.posted: list[dict] = []  # replies and tweets the brand posted
        self.dms: list[dict] = []
        self._ids = itertools.count(1578516295611748353)
        # None: any credentials are taken. A set: only these bearer tokens / API keys (a revoked
        # or mistyped one gets X's 401), for the Channels page's "Test connection".
        self.bearer_tokens: set[str] | None = None
        self.consumer_keys: set[str] | None = None

    # --- state helpers for tests ------------------------------------------------
    def next_id(self) -> str:
        return str(next(self._ids))

    def add_user(self, user_id: str, username: str, name: str = "", followers: int = 10) -> dict:
        user = {"id": user_id, "username": username, "name": name or username,
                "public_metrics": {"followers_count": followers, "following_count": 1, "tweet_count": 1},
                "profile_image_url": f"https://pbs.twimg.com/profile_images/{user_id}.jpg", "verified": False}
        self.users[user_id] = user
        return user

    def add_mention(self, text: str, *, author_id: str, in_reply_to: str | None = None,
                    quote_of: str | None = None, created_at=None) -> dict:
        tweet_id = self.next_id()
        parent = self.tweets.get(in_reply_to) if in_reply_to else None
        refs = []
        if in_reply_to:
            refs.append({"type": "replied_to", "id": in_reply_to})
        if quote_of:
            refs.append({"type": "quoted", "id": quote_of})
        tweet = {
            "id": tweet_id, "text": text, "author_id": author_id, "edit_history_tweet_ids": [tweet_id],
            "created_at": (created_at or timezone.now()).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "conversation_id": parent["conversation_id"] if parent else tweet_id, "lang": "en",
            "public_metrics": {"retweet_count": 0, "reply_count": 0, "like_count": 0, "quote_count": 0},
        }
        if refs:
            tweet["referenced_tweets"] = refs
        if parent:
            tweet["in_reply_to_user_id"] = parent["author_id"]
        with self.lock:
            self.tweets[tweet_id] = tweet
            self.mention_ids.append(int(tweet_id))
        return tweet

    def seed_from_fixture(self) -> list[dict]:
        """The real mentions page recorded by tweepy's tests, as mentions here."""
        recorded = json.loads((FIXTURES / "get_users_mentions.json").read_text())[0]["response"]["data"]
        out = []
        for i, tweet in enumerate(reversed(recorded)):
            author = self.add_user(f"9000{i}", f"customer{i}", f"Customer {i}", followers=10 * (i + 1))
            out.append(self.add_mention(tweet["text"], author_id=author["id"]))
        return out

    def replies_to(self, tweet_id: str) -> list[dict]:
        return [t for t in self.posted if t.get("in_reply_to_tweet_id") == tweet_id]

    # --- API ------------------------------------------------------------------------
    def dispatch(self, method, path, query, body, headers):
        if not self._authorized(headers.get("Authorization") or ""):
            return 401, {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}, {}
        m = re.fullmatch(r"/2/users/(\d+)/mentions", path)
        if method == "GET" and m:
            return self._mentions(m.group(1), query)
        m = re.fullmatch(r"/2/users/(\d+)/tweets", path)
        if method == "GET" and m:
            return self._user_tweets(m.group(1), query)
        if method == "POST" and path == "/2/tweets":
            return self._create_tweet(body or {})
        m = re.fullmatch(r"/2/dm_conversations/with/(\d+)/messages", path)
        if method == "POST" and m:
            event = {"dm_conversation_id": f"{self.brand_id}-{m.group(1)}", "dm_event_id": self.next_id()}
            with self.lock:
                self.dms.append({**event, "participant_id": m.group(1), "text": (body or {}).get("text")})
            return 201, {"data": event}, {}
        if method == "GET" and path == "/2/users/me":
            return 200, {"data": self.users[self.brand_id]}, {}
        m = re.fullmatch(r"/2/users/by/username/([A-Za-z0-9_]+)", path)
        if method == "GET" and m:
            found = [u for u in self.users.values() if u["username"].lower() == m.group(1).lower()]
            return self._user_answer(found[0] if found else None, "username", m.group(1))
        m = re.fullmatch(r"/2/users/(\d+)", path)
        if method == "GET" and m:
            return self._user_answer(self.users.get(m.group(1)), "id", m.group(1))
        return 404, {"title": "Not Found Error", "detail": f"no route {method} {path}"}, {}

    def _authorized(self, auth: str) -> bool:
        if not auth:
            return False
        if auth.startswith("Bearer "):
            return self.bearer_tokens is None or auth[7:] in self.bearer_tokens
        if auth.startswith("OAuth "):
            m = re.search(r'oauth_consumer_key="([^"]*)"', auth)
            return self.consumer_keys is None or bool(m and unquote(m.group(1)) in self.consumer_keys)
        return False

    @staticmethod
    def _user_answer(user, parameter: str, value: str):
        if user:
            return 200, {"data": user}, {}
        # X answers 200 with an errors list for a user that does not exist
        return 200, {"errors": [{"value": value, "detail": f"Could not find user with {parameter}: [{value}].",
                                 "title": "Not Found Error", "parameter": parameter,
                                 "type": "https://api.twitter.com/2/problems/resource-not-found"}]}, {}

    def _mentions(self, user_id, query):
        since_id = int(query.get("since_id", ["0"])[0])
        max_results = int(query.get("max_results", ["10"])[0])
        with self.lock:
            ids = sorted((i for i in self.mention_ids if i > since_id), reverse=True)
        token = query.get("pagination_token", [None])[0]
        start = int(token.split("-")[1]) if token else 0
        page = ids[start:start + max_results]
        if not page:
            return 200, {"meta": {"result_count": 0}}, {}
        data = [self.tweets[str(i)] for i in page]
        author_ids = {t["author_id"] for t in data}
        ref_ids = {r["id"] for t in data for r in t.get("referenced_tweets", []) if r["id"] in self.tweets}
        meta = {"result_count": len(page), "newest_id": str(page[0]), "oldest_id": str(page[-1])}
        if start + max_results < len(ids):
            meta["next_token"] = f"p-{start + max_results}"
        includes = {"users": [self.users[a] for a in author_ids if a in self.users]}
        if ref_ids:
            includes["tweets"] = [self.tweets[r] for r in ref_ids]
        return 200, {"data": data, "includes": includes, "meta": meta}, {}

    def _user_tweets(self, user_id, query):
        since_id = int(query.get("since_id", ["0"])[0])
        with self.lock:
            data = [t for t in reversed(self.posted) if t["author_id"] == user_id and int(t["id"]) > since_id]
        if not data:
            return 200, {"meta": {"result_count": 0}}, {}
        return 200, {"data": data, "meta": {"result_count": len(data)}}, {}

    def _create_tweet(self, body):
        text = body.get("text")
        if not text:
            return 400, {"title": "Invalid Request", "detail": "text is required"}, {}
        if len(text) > 280:
            return 400, {"title": "Invalid Request", "detail": "Tweet text is too long."}, {}
        reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        if reply_to and reply_to not in self.tweets:
            return 400, {"title": "Invalid Request", "detail": "The tweet you are replying to is not visible or was deleted."}, {}
        tweet_id = self.next_id()
        tweet = {"id": tweet_id, "text": text, "author_id": self.brand_id, "edit_history_tweet_ids": [tweet_id]}
        if reply_to:
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": reply_to}]
            tweet["conversation_id"] = self.tweets[reply_to]["conversation_id"]
        with self.lock:
            self.tweets[tweet_id] = tweet
            self.posted.append({**tweet, "in_reply_to_tweet_id": reply_to})
        return 201, {"data": {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}}, {}


def main():  # pragma: no cover - manual use: python -m apps.connectors.standins.twitter
    import os
    import time

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxinbox.settings.base")
    django.setup()
    server = TwitterStandIn().start()
    server.seed_from_fixture()
    print(f"Twitter stand-in at {server.base_url} (set TWITTER_API_BASE_URL)", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":  # pragma: no cover
    main()
