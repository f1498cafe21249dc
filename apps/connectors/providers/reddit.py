"""Reddit through praw: username mentions (/message/mentions) and replies to
the brand's comments and posts (/message/comments) from the inbox; an agent's
answer is a reply to that comment.

praw takes its endpoints from its config: oauth_url (settings.REDDIT_OAUTH_URL)
and reddit_url (settings.REDDIT_URL, where tokens come from), so a stand-in
server takes Reddit's place in tests. Credentials: a script app's client_id,
client_secret, username and password, or an installed app's refresh_token."""
from __future__ import annotations

import datetime as dt
import math
import re
import time
from dataclasses import dataclass
from typing import ClassVar

import praw
import prawcore
from django.conf import settings
from django.utils import timezone
from praw.exceptions import RedditAPIException
from prawcore.sessions import FiniteRetryStrategy

from .base import (AuthError, BaseProvider, ConnectionCheck, InboundMention, OutboundReply, PermanentError, PollResult,
                   RateLimited, SentReply, TransientError, UnknownOutcome, epoch_seconds, network_time,
                   normalize_or_skip)

NETWORK = "Reddit"
WEB = "https://www.reddit.com"
LISTINGS = ("mentions", "comment_replies")
PAGE = 100
CONTEXT_RE = re.compile(r"/comments/(?P<link>[a-z0-9]+)/")
PERMANENT_API_ERRORS = {"DELETED_COMMENT", "THREAD_LOCKED", "TOO_OLD", "NO_TEXT", "TOO_LONG", "SUBREDDIT_NOEXIST",
                        "USER_BLOCKED", "INVALID_USER", "BANNED_FROM_SUBREDDIT"}


@dataclass(frozen=True)
class _NoRetry(FiniteRetryStrategy):
    """prawcore retries timeouts and 5xx by itself, POSTs included: a timed-out
    reply could be posted twice. The outbound task retries, after checking."""

    DEFAULT_RETRIES: ClassVar[int] = 0
    retries: int = 0


class _Requestor(prawcore.Requestor):
    """prawcore's Session passes its own 16 s default on every request, which
    would override the requestor's timeout: hold it to PROVIDER_TIMEOUT_SECONDS."""

    def request(self, *args, timeout=None, **kwargs):
        return super().request(*args, timeout=self.timeout, **kwargs)


class RedditProvider(BaseProvider):
    name = "reddit"
    max_reply_length = 10000
    supports_private_replies = False

    def __init__(self, account):
        super().__init__(account)
        creds = account.credentials or {}
        auth = {"refresh_token": creds["refresh_token"]} if creds.get("refresh_token") else {
            "username": creds.get("username") or account.handle.lstrip("@").removeprefix("u/"),
            "password": creds.get("password", "")}
        self.reddit = praw.Reddit(
            client_id=creds.get("client_id", ""), client_secret=creds.get("client_secret") or None,
            user_agent=settings.REDDIT_USER_AGENT, oauth_url=settings.REDDIT_OAUTH_URL.rstrip("/"),
            reddit_url=settings.REDDIT_URL.rstrip("/"), check_for_updates=False, ratelimit_seconds=0,
            requestor_class=_Requestor, requestor_kwargs={"timeout": settings.PROVIDER_TIMEOUT_SECONDS}, **auth,
        )
        for core in {self.reddit._core, self.reddit._read_only_core, getattr(self.reddit, "_authorized_core", None)}:
            if core is not None:
                core._retry_strategy_class = _NoRetry
        self.username = auth.get("username") or ""

    def _call(self, fn, *, unknown_outcome: bool = False):
        try:
            return fn()
        except prawcore.exceptions.OAuthException as exc:
            raise AuthError(f"{NETWORK} refused the login: {exc.error} {exc.description or ''}".strip()) from exc
        except prawcore.exceptions.TooManyRequests as exc:
            raise RateLimited(*_rate_limit(exc.response)) from exc
        except (prawcore.exceptions.InvalidToken, prawcore.exceptions.Forbidden) as exc:
            raise AuthError(f"{NETWORK} refused the credentials ({exc.response.status_code})") from exc
        except prawcore.exceptions.ServerError as exc:
            cls = UnknownOutcome if unknown_outcome else TransientError
            raise cls(f"{NETWORK} server error {exc.response.status_code}") from exc
        except prawcore.exceptions.ResponseException as exc:
            status = exc.response.status_code
            if status == 401:
                raise AuthError(f"{NETWORK} refused the credentials (401)") from exc
            raise PermanentError(f"{NETWORK} refused the request ({status})") from exc
        except prawcore.exceptions.RequestException as exc:
            timed_out = "Timeout" in type(exc.original_exception).__name__
            cls = UnknownOutcome if unknown_outcome and timed_out else TransientError
            raise cls(f"{NETWORK} unreachable: {type(exc.original_exception).__name__}") from exc
        except RedditAPIException as exc:
            kinds = {item.error_type for item in exc.items}
            detail = "; ".join(f"{i.error_type}: {i.message}" for i in exc.items)[:300]
            if "RATELIMIT" in kinds:
                raise RateLimited(f"{NETWORK} asks to slow down: {detail}",
                                  timezone.now() + dt.timedelta(minutes=_minutes(detail))) from exc
            if kinds & PERMANENT_API_ERRORS or unknown_outcome:
                raise PermanentError(f"{NETWORK} refused the reply: {detail}") from exc
            raise TransientError(f"{NETWORK} error: {detail}") from exc
        except ValueError as exc:  # JSON decoding
            raise TransientError(f"{NETWORK} sent a malformed response") from exc

    def connection_check(self) -> ConnectionCheck:
        """Signs in (the token request checks the app and the user) and reads one item of
        the inbox, as a poll does."""
        self._call(lambda: list(self.reddit.get("message/mentions", params={"limit": 1}) or []))
        who = f"u/{self.username}" if self.username else "the refresh token's user"
        return ConnectionCheck(detail=f"Signed in as {who}; the inbox can be read", handle=self.username)

    # --- mentions ---------------------------------------------------------------
    def fetch_mentions(self, cursor: dict) -> PollResult:
        """Each inbox listing keeps its own cursor: `since` (created_utc of the
        newest item stored) plus the names stored at that second. A backlog
        beyond POLL_MAX_PAGES pages resumes from `after` on the next poll."""
        mentions: list[InboundMention] = []
        new_cursor: dict = {}
        complete = True
        for listing in LISTINGS:
            items, state, done = self._listing(listing, dict(cursor.get(listing) or {}))
            mentions.extend(items)
            new_cursor[listing] = state
            complete = complete and done
        return PollResult(mentions, new_cursor, complete)

    def _listing(self, listing: str, state: dict):
        since = state.get("since")
        seen = set(state.get("seen") or [])
        after = state.get("after")
        newest, newest_names = state.get("newest"), list(state.get("newest_names") or [])
        out: list[InboundMention] = []
        own = self.username.lower()
        for _ in range(settings.POLL_MAX_PAGES):
            params = {"limit": PAGE, **({"after": after} if after else {})}
            # one page per call: praw's ListingGenerator would page on by itself
            page = self._call(lambda p=params: self.reddit.get(f"message/{_PATHS[listing]}", params=p))
            children = list(page) if page is not None else []
            reached_old = False
            for item in children:
                data = item.__dict__
                created = _cursor_time(data.get("created_utc"))
                name = data.get("name") or f"t1_{data.get('id')}"
                if created is None:  # garbage or far future: stored (at its arrival time), never the cursor
                    mention = normalize_or_skip(self.normalize, item, network=NETWORK)
                    if mention and mention.author_handle.lower() != own:
                        out.append(mention)
                    continue
                if newest is None or created > newest:
                    newest, newest_names = created, [name]
                elif created == newest and name not in newest_names:
                    newest_names.append(name)
                if since is not None and (created < since or (created == since and name in seen)):
                    if created < since:
                        reached_old = True
                        break
                    continue
                mention = normalize_or_skip(self.normalize, item, network=NETWORK)
                if mention and mention.author_handle.lower() != own:
                    out.append(mention)
            after = getattr(page, "after", None) if not reached_old else None
            if reached_old or not after or not children:
                return out, ({"since": newest, "seen": newest_names} if newest is not None else {}), True
        return out, {"since": since, "seen": sorted(seen), "after": after, "newest": newest,
                     "newest_names": newest_names}, False

    def normalize(self, item) -> InboundMention | None:
        data = item.__dict__
        body = data.get("body")
        if body is None or not data.get("id"):
            return None
        author = data.get("author")
        author_name = getattr(author, "name", None) or (str(author) if author else "[deleted]")
        context = data.get("context") or ""
        link = CONTEXT_RE.search(context)
        subreddit = getattr(data.get("subreddit"), "display_name", None) or str(data.get("subreddit") or "")
        return InboundMention(
            external_id=data.get("name") or f"t1_{data['id']}",
            text=body,
            created_at=network_time(data.get("created_utc"), epoch_seconds),
            author_external_id=data.get("author_fullname") or f"u/{author_name}",
            author_handle=author_name,
            author_name=author_name,
            author_profile_url=f"{WEB}/user/{author_name}",
            thread_id=f"t3_{link.group('link')}" if link else "",
            in_reply_to_external_id=data.get("parent_id") or "",
            url=WEB + context.split("?", 1)[0] if context else "",
            raw={"type": data.get("type"), "subject": data.get("subject"), "subreddit": subreddit,
                 "link_title": data.get("link_title"), "context": context, "parent_id": data.get("parent_id")},
        )

    # --- replies ---------------------------------------------------------------
    def _thing(self, fullname: str):
        kind, _, short = fullname.partition("_")
        if kind == "t3":
            return self.reddit.submission(id=short)
        return self.reddit.comment(id=short or fullname)

    def send_reply(self, reply: OutboundReply) -> SentReply:
        if not reply.in_reply_to_external_id:
            raise PermanentError(f"{NETWORK}: a reply needs the comment it answers")
        if reply.is_private:
            raise PermanentError(f"{NETWORK} private messages are not supported; reply to the comment")
        thing = self._thing(reply.in_reply_to_external_id)
        comment = self._call(lambda: thing.reply(reply.text), unknown_outcome=True)
        if comment is None:
            raise UnknownOutcome(f"{NETWORK} accepted the reply but returned no comment")
        data = comment.__dict__
        return SentReply(external_id=data.get("name") or f"t1_{data['id']}",
                         url=WEB + data["permalink"] if data.get("permalink") else "",
                         raw={"parent_id": data.get("parent_id")})

    def find_sent_reply(self, reply: OutboundReply) -> SentReply | None:
        """Our newest comments: one under the same parent with the same text was posted."""
        if not self.username or not reply.in_reply_to_external_id:
            return None
        listing = self._call(lambda: self.reddit.get(f"user/{self.username}/comments", params={"limit": 25}))
        for comment in listing or []:
            data = comment.__dict__
            if data.get("parent_id") == reply.in_reply_to_external_id and (data.get("body") or "").strip() == reply.text.strip():
                return SentReply(external_id=data.get("name") or f"t1_{data['id']}",
                                 url=WEB + data["permalink"] if data.get("permalink") else "")
        return None


_PATHS = {"mentions": "mentions", "comment_replies": "comments"}


def _cursor_time(value) -> float | None:
    """created_utc for the cursor, or None when it is not a believable time: a year-9999
    item as the newest would leave every later one "older than the cursor", unfetched."""
    try:
        created = float(value or 0)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(created) or created > time.time() + 86400:
        return None
    return created


def _rate_limit(response) -> tuple[str, dt.datetime]:
    # Reddit's x-ratelimit-reset is seconds until the window resets.
    reset = (response.headers.get("x-ratelimit-reset") or "").split(".")[0]
    reset_at = timezone.now() + dt.timedelta(seconds=int(reset) if reset.isdigit() else 600)
    return f"{NETWORK} rate limit reached; resets at {reset_at:%H:%M:%S} UTC", reset_at


def _minutes(detail: str) -> int:
    m = re.search(r"(\d+) minute", detail)
    return int(m.group(1)) if m else 10
