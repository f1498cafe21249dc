"""The generic API/webhook channel: any system (a chat widget, an app store
review feed, a CRM) POSTs messages in and gets agent replies back by a signed
outgoing webhook.

Check: GET /hooks/webhook/<account id>/?challenge=X with the token -> {"challenge": "X"}
In:  POST /hooks/webhook/<account id>/
     Authorization: Bearer <inbound_token>           (always)
     X-Cxinbox-Timestamp: <unix seconds>             (when a signing_secret is set)
     X-Cxinbox-Signature: sha256=<hex HMAC-SHA256(signing_secret, "<timestamp>." + body)>
     {"messages": [{"id": "m-1", "text": "...", "author": {"id": "u-9", "handle": "ana", "name": "Ana"},
                    "created_at": "2026-01-01T10:00:00Z", "thread_id": "t-1", "in_reply_to": "",
                    "private": false, "url": ""}]}      (or one message object)
Out: POST <the account's api_base_url> with the same two signature headers and
     Idempotency-Key: cxinbox-<account>-<reply id> (a retried reply carries the same key)
     {"type": "reply", "id": "cxinbox-...", "in_reply_to": "m-1", "thread_id": ..., "recipient": "u-9",
      "text": "...", "private": false, "sent_at": "..."}
     A 2xx answer may carry {"id": "<the receiver's id>"}; it becomes the reply's external id.

Both secrets live in ChannelAccount.hook_secrets (encrypted)."""
from __future__ import annotations

import datetime as dt
import json
import time

from django.utils import timezone

from apps.connectors.hooks import HookRefused, hmac_hex, json_load, replay_check, secret_compare, timestamp_check
from apps.core import sanitize

from . import http
from .base import (BaseProvider, ConnectionCheck, InboundMention, MalformedPayload, OutboundReply, PermanentError,
                   PollResult, SentReply, iso_time, network_time, shape_int, shape_obj, shape_str)

NETWORK = "Webhook"
SIGNATURE_HEADER = "X-Cxinbox-Signature"
TIMESTAMP_HEADER = "X-Cxinbox-Timestamp"


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    return "sha256=" + hmac_hex(secret, f"{timestamp}.".encode() + body)


def signed_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict:
    ts = int(timestamp if timestamp is not None else time.time())
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(secret, ts, body)}


def _parse_time(value) -> dt.datetime:
    """ISO 8601 or a 400 (the integrator's bug, worth telling); a time out of any sane
    range (year 9999, year 1 at +14:00, tomorrow's) is not believed: the arrival time."""
    if value is None or value == "":
        return timezone.now()
    if not isinstance(value, str):
        raise MalformedPayload("created_at must be an ISO 8601 string")
    try:
        iso_time(value)
    except ValueError:

        raise HookRefused(f"created_at {value[:100]!r} is not an ISO 8601 time.", 400) from None
    return network_time(value, iso_time)


class WebhookProvider(BaseProvider):
    name = "webhook"
    max_reply_length = 10000
    supports_private_replies = True
    supports_push = True
    supports_polling = False

    @property
    def secrets(self) -> dict:
        return self.account.hook_secrets or {}

    def connection_check(self) -> ConnectionCheck:
        """Nothing to sign in to: the integrator checks the URL and token with GET ?challenge=."""
        if not self.secrets.get("inbound_token"):
            raise PermanentError(f"{NETWORK}: this channel has no inbound token yet; create its secrets")
        where = "replies go to " + self.account.api_base_url if self.account.api_base_url else (
            "no reply URL: replies cannot be sent")
        return ConnectionCheck(detail=f"Ready to receive deliveries (the sender checks with GET ?challenge=); {where}")

    # --- in ---------------------------------------------------------------------------
    def fetch_mentions(self, cursor: dict) -> PollResult:
        return PollResult([], cursor)  # push only: nothing to poll

    def push_challenge(self, request) -> dict:
        """GET ?challenge=X with the token: lets an integrator check the URL and
        token before the first delivery. Answers {"challenge": X}."""
        token = self.secrets.get("inbound_token")
        if not token:
            raise HookRefused("This channel has no inbound token yet; an admin must create one.", 403)
        auth = request.headers.get("Authorization", "")
        secret_compare(token, auth[7:] if auth.lower().startswith("bearer ") else None, what="token")
        challenge = request.GET.get("challenge", "")
        if not challenge or len(challenge) > 200:
            raise HookRefused("challenge is missing or longer than 200 characters.", 400)
        return {"challenge": challenge}

    def push_verify(self, request, body: bytes) -> None:
        token = self.secrets.get("inbound_token")
        if not token:
            raise HookRefused("This channel has no inbound token yet; an admin must create one.", 403)
        auth = request.headers.get("Authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else None
        secret_compare(token, given, what="token")
        signing_secret = self.secrets.get("signing_secret")
        if signing_secret:
            ts = timestamp_check(request.headers.get(TIMESTAMP_HEADER))
            expected = sign(signing_secret, ts, body)
            secret_compare(expected, request.headers.get(SIGNATURE_HEADER))
            replay_check(self.account.pk, expected)

    def push_parse(self, request, body: bytes) -> list[InboundMention]:
        data = json_load(body)
        items = data.get("messages") if isinstance(data, dict) and "messages" in data else [data]
        if not isinstance(items, list) or not items:
            raise HookRefused("Send {\"messages\": [...]} or one message object.", 400)
        return [self.normalize(item, i) for i, item in enumerate(items)]

    def normalize(self, item, index: int = 0) -> InboundMention:
        path = f"messages[{index}]"
        if not isinstance(item, dict):
            raise HookRefused(f"{path} is not an object.", 400)
        author = item.get("author") if isinstance(item.get("author"), dict) else {}
        missing = [f for f, v in (("id", item.get("id")), ("text", item.get("text")), ("author.id", author.get("id")))
                   if v in (None, "")]
        if missing:
            raise HookRefused(f"{path} lacks {', '.join(missing)}.", 400)
        author = shape_obj(item.get("author"), f"{path}.author")
        text = shape_str(item, "text", path, required=True)
        author_id = shape_str(author, "id", f"{path}.author", required=True)
        handle = shape_str(author, "handle", f"{path}.author") or author_id
        try:
            followers = shape_int(author, "followers", f"{path}.author")
        except MalformedPayload:
            followers = 0  # an optional hint: not worth refusing a customer's message over
        return InboundMention(
            external_id=shape_str(item, "id", path, required=True)[:255],
            text=text,
            created_at=_parse_time(item.get("created_at")),
            author_external_id=author_id,
            author_handle=handle,
            author_name=shape_str(author, "name", f"{path}.author"),
            author_followers=followers,
            # only http(s) links are kept (mention_clean): a javascript: URL is dropped here
            author_avatar_url=shape_str(author, "avatar_url", f"{path}.author"),
            author_profile_url=shape_str(author, "profile_url", f"{path}.author"),
            thread_id=shape_str(item, "thread_id", path),
            in_reply_to_external_id=shape_str(item, "in_reply_to", path),
            url=shape_str(item, "url", path),
            is_private=bool(item.get("private")),
            raw={"webhook": item},
        )

    # --- out --------------------------------------------------------------------------
    def send_reply(self, reply: OutboundReply) -> SentReply:
        url = self.account.api_base_url
        secret = self.secrets.get("signing_secret")
        if not url:
            raise PermanentError(f"{NETWORK}: this channel has no reply URL (api_base_url)")
        if not secret:
            raise PermanentError(f"{NETWORK}: this channel has no signing secret; replies are only sent signed")
        reference = f"cxinbox-{self.account.pk}-{reply.client_reference}"
        payload = {"type": "reply", "id": reference, "in_reply_to": reply.in_reply_to_external_id,
                   "recipient": reply.recipient_external_id, "text": reply.text, "private": reply.is_private,
                   "sent_at": timezone.now().isoformat()}
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": reference,
                   "User-Agent": "cxinbox-webhook/1.0", **signed_headers(secret, body)}
        with http.http_client(url) as client:
            resp = http.request(client, "POST", url, NETWORK, unknown_outcome=True, content=body, headers=headers)
        try:
            answer = resp.json() if resp.content else {}
        except ValueError:
            answer = {}
        answer = answer if isinstance(answer, dict) else {}
        # the receiver is a stranger's server too: a storable id, an http(s) link or none
        given = answer.get("id")
        external_id = (sanitize.text_clean(str(given))[:255] if isinstance(given, (str, int)) and not
                       isinstance(given, bool) and str(given) else reference)
        return SentReply(external_id=external_id, url=sanitize.http_url(answer.get("url"))[:500],
                         raw={"status": resp.status_code})
