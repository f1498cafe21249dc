"""Mastodon over its REST API with httpx (the network has no blessed SDK).

Mentions come from /api/v1/notifications?types[]=mention, newest first, paged
down to `since_id` with max_id. A reply is posted with in_reply_to_id and never
with a wider visibility than the post it answers: a direct message gets a
direct answer, a followers-only post a followers-only one. Each account may
live on its own instance (ChannelAccount.api_base_url); the default is
settings.MASTODON_API_BASE_URL."""
from __future__ import annotations

import datetime as dt
import html
from html.parser import HTMLParser
from urllib.parse import urlparse

from django.conf import settings

from . import http
from .base import (BaseProvider, ConnectionCheck, InboundMention, OutboundReply, PermanentError, PollResult, SentReply,
                   iso_time, language_tag, lenient_count, network_time, normalize_or_skip)

NETWORK = "Mastodon"
PAGE_SIZE = 40  # the API's maximum for notifications
# Narrowest last: a reply takes the narrower of the asked and the parent's visibility.
VISIBILITY_ORDER = ["public", "unlisted", "private", "direct"]


class _TextExtractor(HTMLParser):
    """Mastodon sends status content as HTML: paragraphs, <br>, linked mentions."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts:
            self.parts.append("\n\n")

    def handle_data(self, data):
        self.parts.append(data)


def html_to_text(content: str) -> str:
    parser = _TextExtractor()
    parser.feed(content or "")
    parser.close()
    return html.unescape("".join(parser.parts)).strip()


def _parse_time(value: str | None) -> dt.datetime:
    return network_time(value, iso_time)  # year 9999 or garbage: the arrival time


def narrowest_visibility(*values: str) -> str:
    known = [v for v in values if v in VISIBILITY_ORDER]
    return max(known, key=VISIBILITY_ORDER.index) if known else "public"


class MastodonProvider(BaseProvider):
    name = "mastodon"
    max_reply_length = 500  # the default instance limit
    supports_private_replies = True  # visibility "direct"

    def __init__(self, account):
        super().__init__(account)
        self.base_url = (account.api_base_url or settings.MASTODON_API_BASE_URL).rstrip("/")
        self.instance_host = urlparse(self.base_url).hostname or ""
        token = (account.credentials or {}).get("access_token", "")
        self.client = http.http_client(self.base_url, headers={"Authorization": f"Bearer {token}"})
        self._own_id = account.external_user_id or ""

    def _get(self, path: str, **kwargs):
        return http.json_body(http.request(self.client, "GET", path, NETWORK, **kwargs), NETWORK)

    def own_id(self) -> str:
        if not self._own_id:
            self._own_id = str(self._get("/api/v1/accounts/verify_credentials").get("id", ""))
        return self._own_id

    def connection_check(self) -> ConnectionCheck:
        me = self._get("/api/v1/accounts/verify_credentials")
        if not isinstance(me, dict) or not me.get("id"):
            raise http.TransientError(f"{NETWORK} answered without the account")
        acct = f"{me.get('acct') or me.get('username') or me['id']}"
        if "@" not in acct and self.instance_host:
            acct = f"{acct}@{self.instance_host}"
        return ConnectionCheck(detail=f"Signed in as @{acct} (account id {me['id']}) on {self.instance_host}",
                               external_user_id=str(me["id"]), handle=f"@{acct}")

    # --- mentions ---------------------------------------------------------------
    def fetch_mentions(self, cursor: dict) -> PollResult:
        """Pages newest first from the top (or the stored max_id) down to since_id.
        A backlog bigger than POLL_MAX_PAGES is resumed by the next poll."""
        since_id = cursor.get("since_id")
        max_id = cursor.get("max_id")
        newest_id = cursor.get("newest_id")
        own = self.own_id()
        mentions: list[InboundMention] = []
        more = False
        for _ in range(settings.POLL_MAX_PAGES):
            params = [("types[]", "mention"), ("limit", PAGE_SIZE)]
            if since_id:
                params.append(("since_id", since_id))
            if max_id:
                params.append(("max_id", max_id))
            page = self._get("/api/v1/notifications", params=params)
            if not isinstance(page, list):
                raise http.TransientError(f"{NETWORK} sent a malformed notifications page")
            if not page:
                more = False
                break
            ids = [str(n.get("id")) for n in page if n.get("id")]
            if ids and newest_id is None:
                newest_id = max(ids, key=int)
            for notification in page:
                mention = normalize_or_skip(self.normalize, notification, network=NETWORK)
                if mention and mention.author_external_id != own:
                    mentions.append(mention)
            max_id = min(ids, key=int) if ids else None
            more = len(page) >= PAGE_SIZE and bool(max_id)
            if not more:
                break
        if more:  # page limit: carry on below max_id next time, same since_id
            return PollResult(mentions, {"since_id": since_id, "max_id": max_id, "newest_id": newest_id}, False)
        top = newest_id or since_id
        return PollResult(mentions, {"since_id": top} if top else {})

    def normalize(self, notification: dict) -> InboundMention | None:
        if notification.get("type") != "mention":
            return None
        status = notification.get("status") or {}
        author = notification.get("account") or status.get("account") or {}
        if not status.get("id") or not author.get("id"):
            return None
        acct = author.get("acct") or author.get("username") or str(author["id"])
        if "@" not in acct and self.instance_host:
            acct = f"{acct}@{self.instance_host}"  # local accounts: make the handle global
        text = html_to_text(status.get("content", ""))
        if status.get("spoiler_text"):
            text = f"[CW: {status['spoiler_text']}] {text}"
        in_reply_to = str(status.get("in_reply_to_id") or "")
        return InboundMention(
            external_id=str(status["id"]),
            text=text,
            created_at=_parse_time(status.get("created_at")),
            author_external_id=str(author["id"]),
            author_handle=acct,
            author_name=author.get("display_name") or "",
            author_followers=lenient_count(author.get("followers_count")),
            author_avatar_url=author.get("avatar") or "",
            author_profile_url=author.get("url") or "",
            author_verified=False,
            thread_id=in_reply_to or str(status["id"]),
            in_reply_to_external_id=in_reply_to,
            url=status.get("url") or status.get("uri") or "",
            is_private=status.get("visibility") == "direct",
            language=language_tag(status.get("language")),
            raw={"notification_id": str(notification.get("id", "")), "status": status, "account": author},
        )

    # --- replies ---------------------------------------------------------------
    def _audience(self, parent: dict) -> list[str]:
        """Who the reply must @mention to reach the same people: the parent's
        author and the accounts it mentioned, never ourselves."""
        own = self.own_id()
        people = [parent.get("account") or {}] + list(parent.get("mentions") or [])
        out: list[str] = []
        for person in people:
            acct = person.get("acct")
            if acct and str(person.get("id")) != own and acct not in out:
                out.append(acct)
        return out

    def send_reply(self, reply: OutboundReply) -> SentReply:
        wanted = "direct" if reply.is_private else "public"
        body: dict = {"status": reply.text, "visibility": wanted}
        if reply.in_reply_to_external_id:
            try:
                parent = self._get(f"/api/v1/statuses/{reply.in_reply_to_external_id}")
            except PermanentError as exc:
                raise PermanentError(f"{NETWORK}: the post you are replying to is gone ({exc.reason})") from exc
            body["in_reply_to_id"] = reply.in_reply_to_external_id
            body["visibility"] = narrowest_visibility(wanted, parent.get("visibility", "public"))
            if parent.get("spoiler_text"):
                body["spoiler_text"] = parent["spoiler_text"]  # keep the content warning
            mentions = self._audience(parent)
        else:
            person = self._get(f"/api/v1/accounts/{reply.recipient_external_id}")
            mentions = [person["acct"]] if person.get("acct") else []
        prefix = " ".join(f"@{a}" for a in mentions if f"@{a}" not in reply.text)
        if prefix:
            body["status"] = f"{prefix} {reply.text}"
        # Mastodon keeps an Idempotency-Key for an hour: a retried POST returns the same status.
        resp = http.request(
            self.client, "POST", "/api/v1/statuses", NETWORK, unknown_outcome=True, json=body,
            headers={"Idempotency-Key": f"cxinbox-{self.account.pk}-{reply.client_reference}"},
        )
        status = http.json_body(resp, NETWORK)
        if not isinstance(status, dict) or not status.get("id"):
            raise http.UnknownOutcome(f"{NETWORK} accepted the reply but sent no status id")
        return SentReply(external_id=str(status["id"]), url=status.get("url") or "",
                         raw={"visibility": status.get("visibility"), "in_reply_to_id": status.get("in_reply_to_id")})

    def find_sent_reply(self, reply: OutboundReply) -> SentReply | None:
        """Our own answer to the same post with the same text, in its thread."""
        if not reply.in_reply_to_external_id:
            return None
        context = self._get(f"/api/v1/statuses/{reply.in_reply_to_external_id}/context")
        own = self.own_id()
        for status in (context or {}).get("descendants") or []:
            if (str((status.get("account") or {}).get("id")) == own
                    and str(status.get("in_reply_to_id")) == reply.in_reply_to_external_id
                    and html_to_text(status.get("content", "")).endswith(reply.text.strip())):
                return SentReply(external_id=str(status["id"]), url=status.get("url") or "")
        return None
