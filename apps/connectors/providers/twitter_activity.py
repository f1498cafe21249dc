"""Twitter/X push: the Account Activity API webhook.

- CRC: X sends GET ?crc_token=...; we answer
  {"response_token": "sha256=" + base64(HMAC-SHA256(consumer_secret, crc_token))}.
- Deliveries: POST with x-twitter-webhooks-signature = "sha256=" + base64(HMAC-SHA256(consumer_secret, body)),
  carrying v1.1-shaped tweet_create_events and direct_message_events for
  for_user_id. X sends no timestamp; a re-sent delivery is harmless because
  ingest stores each tweet once.

Polling (providers/twitter.py, API v2) and push produce the same external ids
(tweet id, DM event id), so a mention seen both ways is stored once."""
from __future__ import annotations

import datetime as dt

from django.utils import timezone

from .base import InboundMention

SIGNATURE_HEADER = "x-twitter-webhooks-signature"


def _parse_v1_time(value: str | None) -> dt.datetime:
    if not value:
        return timezone.now()
    try:
        return dt.datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y")
    except ValueError:
        return timezone.now()


class TwitterAccountActivity:
    def __init__(self, account):
        self.account = account
        self.secret = (account.credentials or {}).get("consumer_secret", "")

    def _secret(self) -> str:
        from apps.connectors.hooks import HookRefused

        if not self.secret:
            raise HookRefused("This account has no consumer secret to verify deliveries with.", 403)
        return self.secret

    def push_challenge(self, request) -> dict:
        from apps.connectors.hooks import HookRefused, hmac_b64

        crc = request.GET.get("crc_token")
        if not crc:
            raise HookRefused("crc_token is missing.", 400)
        return {"response_token": "sha256=" + hmac_b64(self._secret(), crc.encode())}

    def push_verify(self, request, body: bytes) -> None:
        from apps.connectors.hooks import hmac_b64, secret_compare

        secret_compare("sha256=" + hmac_b64(self._secret(), body), request.headers.get(SIGNATURE_HEADER))

    def push_parse(self, request, body: bytes) -> list[InboundMention]:
        from apps.connectors.hooks import HookRefused, json_load

        data = json_load(body)
        if not isinstance(data, dict):
            raise HookRefused("The delivery is not a JSON object.", 400)
        own = str(data.get("for_user_id") or "")
        if own != str(self.account.external_user_id):
            raise HookRefused("The delivery is for another user.", 400)
        out = [m for t in data.get("tweet_create_events") or [] if (m := self.normalize_tweet(t, own))]
        users = data.get("users") or {}
        out += [m for e in data.get("direct_message_events") or [] if (m := self.normalize_dm(e, users, own))]
        return out

    def normalize_tweet(self, tweet: dict, own: str) -> InboundMention | None:
        user = tweet.get("user") or {}
        if not tweet.get("id_str") or str(user.get("id_str")) == own or tweet.get("retweeted_status"):
            return None  # our own tweets and retweets arrive too
        text = (tweet.get("extended_tweet") or {}).get("full_text") or tweet.get("full_text") or tweet.get("text", "")
        handle = user.get("screen_name") or user.get("id_str") or "unknown"
        parent = tweet.get("in_reply_to_status_id_str") or ""
        return InboundMention(
            external_id=tweet["id_str"],
            text=text,
            created_at=_parse_v1_time(tweet.get("created_at")),
            author_external_id=str(user.get("id_str") or handle),
            author_handle=handle,
            author_name=user.get("name", ""),
            author_followers=int(user.get("followers_count") or 0),
            author_avatar_url=user.get("profile_image_url_https", ""),
            author_profile_url=f"https://x.com/{handle}",
            author_verified=bool(user.get("verified")),
            thread_id=parent or tweet["id_str"],
            in_reply_to_external_id=parent,
            quoted_text=((tweet.get("quoted_status") or {}).get("text") or ""),
            url=f"https://x.com/{handle}/status/{tweet['id_str']}",
            raw={"tweet_v1": tweet},
        )

    def normalize_dm(self, event: dict, users: dict, own: str) -> InboundMention | None:
        create = event.get("message_create") or {}
        sender = str(create.get("sender_id") or "")
        if event.get("type") != "message_create" or not sender or sender == own or not event.get("id"):
            return None
        user = users.get(sender) or {}
        handle = user.get("screen_name") or sender
        ms = str(event.get("created_timestamp") or "")
        created = dt.datetime.fromtimestamp(int(ms) / 1000, tz=dt.timezone.utc) if ms.isdigit() else timezone.now()
        return InboundMention(
            external_id=str(event["id"]),
            text=(create.get("message_data") or {}).get("text", ""),
            created_at=created,
            author_external_id=sender,
            author_handle=handle,
            author_name=user.get("name", ""),
            author_followers=int(user.get("followers_count") or 0),
            author_avatar_url=user.get("profile_image_url_https", ""),
            author_profile_url=f"https://x.com/{handle}",
            author_verified=bool(user.get("verified")),
            thread_id=f"dm-{sender}",
            is_private=True,
            raw={"dm_event": event},
        )
