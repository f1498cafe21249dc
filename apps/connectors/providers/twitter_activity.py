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

from apps.connectors.hooks import HookRefused, hmac_b64, json_load, secret_compare

from .base import (InboundMention, epoch_millis, language_tag, network_time, shape_int, shape_list, shape_obj,
                   shape_str, v1_time)

SIGNATURE_HEADER = "x-twitter-webhooks-signature"


class TwitterAccountActivity:
    def __init__(self, account):
        self.account = account
        self.secret = (account.credentials or {}).get("consumer_secret", "")

    def _secret(self) -> str:
        if not self.secret:
            raise HookRefused("This account has no consumer secret to verify deliveries with.", 403)
        return self.secret

    def push_challenge(self, request) -> dict:
        crc = request.GET.get("crc_token")
        if not crc:
            raise HookRefused("crc_token is missing.", 400)
        return {"response_token": "sha256=" + hmac_b64(self._secret(), crc.encode())}

    def push_verify(self, request, body: bytes) -> None:
        secret_compare("sha256=" + hmac_b64(self._secret(), body), request.headers.get(SIGNATURE_HEADER))

    def push_parse(self, request, body: bytes) -> list[InboundMention]:
        """The shape is checked before anything is read: a signed delivery of the wrong
        shape (events as a dict, a user as a string, followers "abc") is refused whole
        with the reason (MalformedPayload -> 400), storing nothing."""
        data = json_load(body)
        if not isinstance(data, dict):
            raise HookRefused("The delivery is not a JSON object.", 400)
        own = shape_str(data, "for_user_id", "delivery")
        if own != str(self.account.external_user_id):
            raise HookRefused("The delivery is for another user.", 400)
        tweets = shape_list(data.get("tweet_create_events"), "tweet_create_events")
        events = shape_list(data.get("direct_message_events"), "direct_message_events")
        users = shape_obj(data.get("users"), "users", optional=True)
        out = [m for i, t in enumerate(tweets) if (m := self.normalize_tweet(t, own, f"tweet_create_events[{i}]"))]
        out += [m for i, e in enumerate(events)
                if (m := self.normalize_dm(e, users, own, f"direct_message_events[{i}]"))]
        return out

    def normalize_tweet(self, tweet, own: str, path: str = "tweet") -> InboundMention | None:
        tweet = shape_obj(tweet, path)
        user = shape_obj(tweet.get("user"), f"{path}.user", optional=True)
        tweet_id = shape_str(tweet, "id_str", path, digits=True)
        user_id = shape_str(user, "id_str", f"{path}.user", digits=True)
        if not tweet_id or user_id == own or tweet.get("retweeted_status"):
            return None  # our own tweets and retweets arrive too
        extended = shape_obj(tweet.get("extended_tweet"), f"{path}.extended_tweet", optional=True)
        text = (shape_str(extended, "full_text", f"{path}.extended_tweet") or shape_str(tweet, "full_text", path)
                or shape_str(tweet, "text", path))
        handle = shape_str(user, "screen_name", f"{path}.user") or user_id or "unknown"
        parent = shape_str(tweet, "in_reply_to_status_id_str", path, digits=True)
        quoted = shape_obj(tweet.get("quoted_status"), f"{path}.quoted_status", optional=True)
        return InboundMention(
            external_id=tweet_id,
            text=text,
            created_at=network_time(tweet.get("created_at"), v1_time),
            author_external_id=user_id or handle,
            author_handle=handle,
            author_name=shape_str(user, "name", f"{path}.user"),
            author_followers=shape_int(user, "followers_count", f"{path}.user"),
            author_avatar_url=shape_str(user, "profile_image_url_https", f"{path}.user"),
            author_profile_url=f"https://x.com/{handle}",
            author_verified=user.get("verified") is True,
            thread_id=parent or tweet_id,
            in_reply_to_external_id=parent,
            quoted_text=shape_str(quoted, "text", f"{path}.quoted_status"),
            url=f"https://x.com/{handle}/status/{tweet_id}",
            language=language_tag(tweet.get("lang")),
            raw={"tweet_v1": tweet},
        )

    def normalize_dm(self, event, users: dict, own: str, path: str = "event") -> InboundMention | None:
        event = shape_obj(event, path)
        create = shape_obj(event.get("message_create"), f"{path}.message_create", optional=True)
        sender = shape_str(create, "sender_id", f"{path}.message_create", digits=True)
        event_id = shape_str(event, "id", path, digits=True)
        if event.get("type") != "message_create" or not sender or sender == own or not event_id:
            return None
        user = shape_obj(users.get(sender), f"users.{sender}", optional=True)
        handle = shape_str(user, "screen_name", f"users.{sender}") or sender
        data = shape_obj(create.get("message_data"), f"{path}.message_create.message_data", optional=True)
        return InboundMention(
            external_id=event_id,
            text=shape_str(data, "text", f"{path}.message_create.message_data"),
            created_at=network_time(event.get("created_timestamp"), epoch_millis),
            author_external_id=sender,
            author_handle=handle,
            author_name=shape_str(user, "name", f"users.{sender}"),
            author_followers=shape_int(user, "followers_count", f"users.{sender}"),
            author_avatar_url=shape_str(user, "profile_image_url_https", f"users.{sender}"),
            author_profile_url=f"https://x.com/{handle}",
            author_verified=user.get("verified") is True,
            thread_id=f"dm-{sender}",
            is_private=True,
            raw={"dm_event": event},
        )
