"""Bluesky through the atproto SDK.

Mentions, replies and quotes come from app.bsky.notification.listNotifications
(newest first, paged with the API cursor down to the last indexedAt stored).
A reply carries strong references (uri + cid) to its parent and to the root of
the thread, read from the parent post itself (app.bsky.feed.getPosts), so it
lands in the right thread even when the customer answered deep inside it.

The SDK's base_url is the account's PDS (ChannelAccount.api_base_url) or
settings.BLUESKY_API_BASE_URL. createSession is rate limited (30 per 5 min), so
the session string is kept, encrypted, in the cache and reused across polls."""
from __future__ import annotations

import datetime as dt
import logging

from atproto import Client, models
from atproto_client import exceptions as at_exc
from atproto_client.models.utils import get_model_as_dict
from atproto_client.request import Request
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from apps.core.fields import decrypt_value, encrypt_value

from .base import (AuthError, BaseProvider, ConnectionCheck, InboundMention, OutboundReply, PermanentError, PollResult,
                   RateLimited, SentReply, TransientError, UnknownOutcome, iso_time, language_tag, network_time,
                   normalize_or_skip)

log = logging.getLogger(__name__)
NETWORK = "Bluesky"
REASONS = ["mention", "reply", "quote"]
SESSION_CACHE_SECONDS = 7 * 24 * 3600
# Token errors the PDS answers with 400: the stored session is stale, log in again.
SESSION_ERRORS = {"ExpiredToken", "InvalidToken"}


def _parse_time(value: str | None) -> dt.datetime:
    if not value:
        return timezone.now()
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def post_web_url(handle: str, uri: str) -> str:
    """at://did/app.bsky.feed.post/<rkey> -> the bsky.app page of the post."""
    return f"https://bsky.app/profile/{handle}/post/{uri.rsplit('/', 1)[-1]}"


def _record_dict(record) -> dict:
    try:
        return get_model_as_dict(record)
    except Exception:  # a record type the SDK does not model comes as a DotDict
        return record.to_dict() if hasattr(record, "to_dict") else {}


def _error_name(exc: at_exc.RequestErrorBase) -> str:
    content = getattr(exc.response, "content", None)
    return getattr(content, "error", "") or ""


class BlueskyProvider(BaseProvider):
    name = "bluesky"
    max_reply_length = 300  # graphemes
    supports_private_replies = False  # DMs live on a separate chat service

    def __init__(self, account):
        super().__init__(account)
        base_url = (account.api_base_url or settings.BLUESKY_API_BASE_URL).rstrip("/")
        self.client = Client(base_url=base_url, request=Request(timeout=settings.PROVIDER_TIMEOUT_SECONDS))
        self.client.on_session_change(self._session_store)
        self._logged_in = False

    # --- session ------------------------------------------------------------------
    @property
    def _cache_key(self) -> str:
        return f"bluesky-session:{self.account.pk}"

    def _session_store(self, event, session) -> None:
        if self.account.pk is None:  # "Test connection" of an account not saved yet: nothing to key it by
            return
        cache.set(self._cache_key, encrypt_value(self.client.export_session_string()), SESSION_CACHE_SECONDS)

    def _login(self, *, fresh: bool = False) -> None:
        stored = None if fresh else cache.get(self._cache_key)
        if stored:
            try:
                self.client.login(session_string=decrypt_value(stored), fetch_bsky_profile=False)
                self._logged_in = True
                return
            except Exception:  # undecryptable or malformed: fall back to a new session
                cache.delete(self._cache_key)
        creds = self.account.credentials or {}
        identifier = creds.get("identifier") or self.account.handle.lstrip("@")
        if not creds.get("app_password"):
            raise AuthError(f"{NETWORK}: no app password stored for this account")
        self._wrap(lambda: self.client.login(identifier, creds["app_password"], fetch_bsky_profile=False),
                   relogin=False)
        self._logged_in = True

    @property
    def did(self) -> str:
        session = self.client._session
        return session.did if session else self.account.external_user_id

    def _call(self, fn, *, unknown_outcome: bool = False):
        """Logs in on first use; a stale stored session gets one fresh login."""
        if not self._logged_in:
            self._login()
        try:
            return self._wrap(fn, unknown_outcome=unknown_outcome)
        except _StaleSession:
            cache.delete(self._cache_key)
            self._login(fresh=True)
            return self._wrap(fn, unknown_outcome=unknown_outcome, relogin=False)

    def _wrap(self, fn, *, unknown_outcome: bool = False, relogin: bool = True):
        try:
            return fn()
        except at_exc.RateLimitExceededError as exc:
            headers = {k.lower(): v for k, v in (exc.response.headers if exc.response else {}).items()}
            reset = str(headers.get("ratelimit-reset", ""))
            reset_at = (dt.datetime.fromtimestamp(int(reset), tz=dt.timezone.utc) if reset.isdigit()
                        else timezone.now() + dt.timedelta(minutes=5))
            raise RateLimited(f"{NETWORK} rate limit reached; resets at {reset_at:%H:%M:%S} UTC", reset_at) from exc
        except at_exc.UnauthorizedError as exc:
            if relogin:
                raise _StaleSession() from exc
            raise AuthError(f"{NETWORK} refused the credentials: {exc}") from exc
        except at_exc.BadRequestError as exc:
            if _error_name(exc) in SESSION_ERRORS and relogin:
                raise _StaleSession() from exc
            raise PermanentError(f"{NETWORK} refused the request: {exc}") from exc
        except at_exc.LoginRequiredError as exc:
            raise AuthError(f"{NETWORK}: login required") from exc
        except at_exc.InvokeTimeoutError as exc:
            cls = UnknownOutcome if unknown_outcome else TransientError
            raise cls(f"{NETWORK} did not answer in time") from exc
        except at_exc.NetworkError as exc:
            cls = UnknownOutcome if unknown_outcome and exc.response is not None else TransientError
            raise cls(f"{NETWORK} unreachable or busy: {exc}") from exc
        except at_exc.RequestException as exc:
            cls = UnknownOutcome if unknown_outcome else TransientError
            raise cls(f"{NETWORK} server error: {exc}") from exc
        except at_exc.ModelError as exc:
            raise TransientError(f"{NETWORK} sent a malformed response: {exc}") from exc

    def connection_check(self) -> ConnectionCheck:
        """A fresh login with the stored app password (never the cached session: the
        password is what is being checked)."""
        self._login(fresh=True)
        session = self.client._session
        handle = (session.handle if session else "") or self.account.handle.lstrip("@")
        return ConnectionCheck(detail=f"Signed in as @{handle} ({self.did})", external_user_id=self.did or "",
                               handle=handle)

    # --- mentions ---------------------------------------------------------------
    def fetch_mentions(self, cursor: dict) -> PollResult:
        """The cursor holds `seen_until` (the newest indexedAt stored); while a
        backlog is being paged also the API `page` cursor and `newest`."""
        seen_until = _parse_time(cursor["seen_until"]) if cursor.get("seen_until") else None
        # notifications indexed in the same millisecond as seen_until that are stored already
        seen_uris = set(cursor.get("seen_uris") or [])
        page_cursor = cursor.get("page")
        newest = cursor.get("newest")
        newest_uris: list[str] = list(cursor.get("newest_uris") or [])
        mentions: list[InboundMention] = []
        more = False
        for _ in range(settings.POLL_MAX_PAGES):
            params = models.AppBskyNotificationListNotifications.Params(limit=100, reasons=REASONS, cursor=page_cursor)
            page = self._call(lambda p=params: self.client.app.bsky.notification.list_notifications(p))
            reached_old = False
            for item in page.notifications:
                if newest is None:
                    newest = item.indexed_at
                if item.indexed_at == newest and item.uri not in newest_uris:
                    newest_uris.append(item.uri)
                indexed = _parse_time(item.indexed_at)
                if seen_until and (indexed < seen_until or (indexed == seen_until and item.uri in seen_uris)):
                    reached_old = indexed < seen_until
                    if reached_old:
                        break
                    continue
                mention = normalize_or_skip(self.normalize, item, network=NETWORK)
                if mention and mention.author_external_id != self.did:
                    mentions.append(mention)
            page_cursor = page.cursor
            more = bool(page_cursor) and bool(page.notifications) and not reached_old
            if not more:
                break
        if more:
            return PollResult(mentions, {"seen_until": cursor.get("seen_until"), "seen_uris": sorted(seen_uris),
                                         "page": page_cursor, "newest": newest, "newest_uris": newest_uris}, False)
        if newest:
            return PollResult(mentions, {"seen_until": newest, "seen_uris": newest_uris})
        return PollResult(mentions, {k: cursor[k] for k in ("seen_until", "seen_uris") if k in cursor})

    def normalize(self, item) -> InboundMention | None:
        if item.reason not in REASONS:
            return None
        record = item.record
        text = getattr(record, "text", None)
        if text is None:
            return None
        reply = getattr(record, "reply", None)
        author = item.author
        return InboundMention(
            external_id=item.uri,
            text=text,
            # createdAt is the poster's claim (year 9999, year 1...): believed only when sane
            created_at=network_time(getattr(record, "created_at", None) or item.indexed_at, iso_time),
            author_external_id=author.did,
            author_handle=author.handle,
            author_name=author.display_name or "",
            author_avatar_url=author.avatar or "",
            author_profile_url=f"https://bsky.app/profile/{author.handle}",
            thread_id=reply.root.uri if reply else item.uri,
            in_reply_to_external_id=reply.parent.uri if reply else "",
            url=post_web_url(author.handle, item.uri),
            language=language_tag((getattr(record, "langs", None) or [""])[0]),
            raw={"uri": item.uri, "cid": item.cid, "reason": item.reason, "indexed_at": item.indexed_at,
                 "record": _record_dict(record)},
        )

    # --- replies ---------------------------------------------------------------
    def _reply_refs(self, parent_uri: str) -> models.AppBskyFeedPost.ReplyRef:
        posts = self._call(lambda: self.client.get_posts([parent_uri])).posts
        if not posts:
            raise PermanentError(f"{NETWORK}: the post you are replying to was deleted")
        parent = posts[0]
        parent_ref = models.ComAtprotoRepoStrongRef.Main(uri=parent.uri, cid=parent.cid)
        parent_reply = getattr(parent.record, "reply", None)
        root_ref = (models.ComAtprotoRepoStrongRef.Main(uri=parent_reply.root.uri, cid=parent_reply.root.cid)
                    if parent_reply else parent_ref)
        return models.AppBskyFeedPost.ReplyRef(parent=parent_ref, root=root_ref)

    def send_reply(self, reply: OutboundReply) -> SentReply:
        if reply.is_private:
            raise PermanentError(f"{NETWORK} direct messages are not supported; reply publicly")
        refs = self._reply_refs(reply.in_reply_to_external_id) if reply.in_reply_to_external_id else None
        created = self._call(lambda: self.client.send_post(reply.text, profile_identify=self.did, reply_to=refs),
                             unknown_outcome=True)
        handle = (self.client._session.handle if self.client._session else "") or self.account.handle.lstrip("@")
        return SentReply(external_id=created.uri, url=post_web_url(handle, created.uri), raw={"cid": created.cid})

    def find_sent_reply(self, reply: OutboundReply) -> SentReply | None:
        """Our own reply with the same text under the same parent."""
        if not reply.in_reply_to_external_id:
            return None
        thread = self._call(lambda: self.client.get_post_thread(reply.in_reply_to_external_id, depth=1)).thread
        for child in getattr(thread, "replies", None) or []:
            post = getattr(child, "post", None)
            if post and post.author.did == self.did and getattr(post.record, "text", "").strip() == reply.text.strip():
                return SentReply(external_id=post.uri, url=post_web_url(post.author.handle, post.uri),
                                 raw={"cid": post.cid})
        return None


class _StaleSession(Exception):
    """The stored session was refused: log in with the app password once."""
