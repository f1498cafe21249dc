"""Twitter/X through tweepy's API v2 Client.

tweepy fixes its host (https://api.twitter.com) in BaseClient.request, so the
client gets a requests.Session that sends its requests to
settings.TWITTER_API_BASE_URL instead: the real network in production, a
stand-in server in tests and demos."""
from __future__ import annotations

import datetime as dt

import requests
import tweepy
from django.conf import settings
from django.utils import timezone

from .base import (AuthError, BaseProvider, ConnectionCheck, InboundMention, OutboundReply, PermanentError, PollResult,
                   RateLimited, SentReply, TransientError, UnknownOutcome, iso_time, language_tag, lenient_count,
                   network_time, normalize_or_skip)

TWEEPY_HOST = "https://api.twitter.com"
TWEET_FIELDS = [
    "created_at", "conversation_id", "in_reply_to_user_id", "referenced_tweets",
    "lang", "public_metrics", "entities", "author_id",
]
USER_FIELDS = ["username", "name", "public_metrics", "profile_image_url", "verified"]
EXPANSIONS = ["author_id", "referenced_tweets.id", "referenced_tweets.id.author_id", "in_reply_to_user_id"]


class BaseURLSession(requests.Session):
    """Rewrites tweepy's fixed host to the configured base URL; adds a timeout."""

    def __init__(self, base_url: str, timeout: float):
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(self, method, url, *args, **kwargs):
        if url.startswith(TWEEPY_HOST):
            url = self.base_url + url[len(TWEEPY_HOST):]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


def _parse_time(value: str | None) -> dt.datetime:
    return network_time(value, iso_time)  # year 9999 or garbage: the arrival time


class TwitterProvider(BaseProvider):
    name = "twitter"
    max_reply_length = 280
    supports_private_replies = True
    max_private_reply_length = 10000  # a DM is not a tweet

    def __init__(self, account):
        super().__init__(account)
        creds = account.credentials or {}
        self.user_auth = bool(creds.get("consumer_key") and creds.get("access_token"))
        self.client = tweepy.Client(
            bearer_token=creds.get("bearer_token"),
            consumer_key=creds.get("consumer_key"),
            consumer_secret=creds.get("consumer_secret"),
            access_token=creds.get("access_token"),
            access_token_secret=creds.get("access_token_secret"),
            return_type=dict,
        )
        self.client.session = BaseURLSession(settings.TWITTER_API_BASE_URL, settings.PROVIDER_TIMEOUT_SECONDS)

    # --- calls with errors mapped to the connector's error kinds ---------------
    def _call(self, fn, *args, unknown_outcome=False, **kwargs):
        try:
            return fn(*args, **kwargs)
        except tweepy.TooManyRequests as exc:
            reset = exc.response.headers.get("x-rate-limit-reset")
            reset_at = (
                dt.datetime.fromtimestamp(int(reset), tz=dt.timezone.utc)
                if reset and reset.isdigit()
                else timezone.now() + dt.timedelta(minutes=15)
            )
            raise RateLimited(f"Twitter rate limit reached; resets at {reset_at:%H:%M:%S} UTC", reset_at) from exc
        except (tweepy.Unauthorized, tweepy.Forbidden) as exc:
            raise AuthError(f"Twitter refused the credentials ({exc.response.status_code}): {_api_message(exc)}") from exc
        except (tweepy.BadRequest, tweepy.NotFound) as exc:
            raise PermanentError(f"Twitter refused the request ({exc.response.status_code}): {_api_message(exc)}") from exc
        except tweepy.TwitterServerError as exc:
            cls = UnknownOutcome if unknown_outcome else TransientError
            raise cls(f"Twitter server error {exc.response.status_code}") from exc
        except tweepy.HTTPException as exc:
            raise TransientError(f"Twitter answered {exc.response.status_code}") from exc
        except requests.exceptions.ConnectTimeout as exc:
            raise TransientError("Twitter did not accept the connection in time") from exc
        except requests.exceptions.ConnectionError as exc:
            raise TransientError(f"Twitter unreachable: {exc.__class__.__name__}") from exc
        except requests.exceptions.Timeout as exc:
            cls = UnknownOutcome if unknown_outcome else TransientError
            raise cls("Twitter did not answer in time") from exc
        except ValueError as exc:  # JSON decoding
            raise TransientError("Twitter sent a malformed response (not JSON)") from exc

    def connection_check(self) -> ConnectionCheck:
        """User context (API key + access token): who the tokens act for (GET /2/users/me).
        A bearer token alone: the watched account, by user id or else by handle."""
        if self.user_auth:
            data = self._call(self.client.get_me, user_auth=True)
        elif self.account.external_user_id:
            data = self._call(self.client.get_user, id=self.account.external_user_id, user_auth=False)
        else:
            data = self._call(self.client.get_user, username=self.account.handle.lstrip("@"), user_auth=False)
        user = (data or {}).get("data") if isinstance(data, dict) else None
        if not isinstance(user, dict) or not user.get("id"):
            errors = (data or {}).get("errors") if isinstance(data, dict) else None
            if errors:  # X answers 200 with an errors list for a user that does not exist
                raise PermanentError(f"Twitter: {_error_details(errors)}")
            raise TransientError("Twitter answered without the user")
        how = "as" if self.user_auth else "with the bearer token; watching"
        return ConnectionCheck(detail=f"Signed in {how} @{user.get('username', '?')} (user id {user['id']})",
                               external_user_id=str(user["id"]), handle=str(user.get("username") or ""))

    # --- mentions ---------------------------------------------------------------
    def fetch_mentions(self, cursor: dict) -> PollResult:
        """Newest-first pages from since_id down; resumable through next_token.

        The cursor holds since_id (everything at or below it is stored) and, while a
        backlog is being paged, next_token + newest_id so the next poll carries on."""
        since_id = cursor.get("since_id")
        token = cursor.get("next_token")
        newest_id = cursor.get("newest_id")
        mentions: list[InboundMention] = []
        for _ in range(settings.POLL_MAX_PAGES):
            params = dict(
                since_id=since_id, max_results=100, pagination_token=token,
                expansions=EXPANSIONS, tweet_fields=TWEET_FIELDS, user_fields=USER_FIELDS,
                user_auth=self.user_auth and not self.account.credentials.get("bearer_token"),
            )
            page = self._call(self.client.get_users_mentions, self.account.external_user_id, **params)
            if not isinstance(page, dict):
                raise TransientError("Twitter sent a malformed mentions page")
            meta = page.get("meta") or {}
            newest_id = newest_id or meta.get("newest_id")
            mentions.extend(self.normalize_page(page))
            token = meta.get("next_token")
            if not token:
                break
        if token:  # page limit hit: keep paging next time, below the same since_id
            return PollResult(mentions, {"since_id": since_id, "next_token": token, "newest_id": newest_id}, False)
        return PollResult(mentions, {"since_id": newest_id or since_id} if (newest_id or since_id) else {})

    def normalize_page(self, page: dict) -> list[InboundMention]:
        includes = page.get("includes") if isinstance(page.get("includes"), dict) else {}
        users = {u["id"]: u for u in _dicts(includes.get("users")) if isinstance(u.get("id"), str)}
        tweets = {t["id"]: t for t in _dicts(includes.get("tweets")) if isinstance(t.get("id"), str)}
        out = []
        for tweet in _dicts(page.get("data")):
            mention = normalize_or_skip(self.normalize, tweet, users, tweets, network="Twitter")
            if mention and mention.author_external_id != self.account.external_user_id:
                out.append(mention)
        return out

    def normalize(self, tweet: dict, users: dict, tweets: dict) -> InboundMention | None:
        if not tweet.get("id") or "text" not in tweet:
            return None
        author_id = tweet.get("author_id") or ""
        user = users.get(author_id, {})
        handle = user.get("username") or author_id or "unknown"
        replied_to = quoted = ""
        for ref in tweet.get("referenced_tweets") or []:
            if ref.get("type") == "replied_to":
                replied_to = ref.get("id", "")
            elif ref.get("type") == "quoted":
                quoted = tweets.get(ref.get("id"), {}).get("text", "")
        return InboundMention(
            external_id=str(tweet["id"]),
            text=tweet["text"],
            created_at=_parse_time(tweet.get("created_at")),
            author_external_id=str(author_id or handle),
            author_handle=handle,
            author_name=user.get("name", ""),
            author_followers=lenient_count((user.get("public_metrics") or {}).get("followers_count")),
            author_avatar_url=user.get("profile_image_url", ""),
            author_profile_url=f"https://x.com/{handle}",
            author_verified=bool(user.get("verified")),
            thread_id=str(tweet.get("conversation_id") or tweet["id"]),
            in_reply_to_external_id=replied_to,
            quoted_text=quoted,
            url=f"https://x.com/{handle}/status/{tweet['id']}",
            language=language_tag(tweet.get("lang")),
            raw={"tweet": tweet, "author": user},
        )

    # --- replies ---------------------------------------------------------------
    def send_reply(self, reply: OutboundReply) -> SentReply:
        if reply.is_private:
            resp = self._call(
                self.client.create_direct_message, participant_id=reply.recipient_external_id,
                text=reply.text, user_auth=self.user_auth, unknown_outcome=True,
            )
            data = (resp or {}).get("data") or {}
            event_id = data.get("dm_event_id")
            if not event_id:
                raise UnknownOutcome("Twitter accepted the message but sent no id")
            return SentReply(external_id=str(event_id), raw=data)
        resp = self._call(
            self.client.create_tweet, text=reply.text, in_reply_to_tweet_id=reply.in_reply_to_external_id or None,
            user_auth=self.user_auth, unknown_outcome=True,
        )
        data = (resp or {}).get("data") or {}
        if not data.get("id"):
            raise UnknownOutcome("Twitter accepted the reply but sent no tweet id")
        return SentReply(external_id=str(data["id"]), url=f"https://x.com/{self.account.handle.lstrip('@')}/status/{data['id']}", raw=data)

    def find_sent_reply(self, reply: OutboundReply) -> SentReply | None:
        """Our recent tweets answering the same tweet with the same text: posted already."""
        if reply.is_private or not reply.in_reply_to_external_id:
            return None
        resp = self._call(
            self.client.get_users_tweets, self.account.external_user_id, since_id=reply.in_reply_to_external_id,
            max_results=100, tweet_fields=["referenced_tweets"], user_auth=self.user_auth,
        )
        for tweet in (resp or {}).get("data") or []:
            refs = {(r.get("type"), r.get("id")) for r in tweet.get("referenced_tweets") or []}
            if ("replied_to", reply.in_reply_to_external_id) in refs and tweet.get("text", "").strip() == reply.text.strip():
                return SentReply(external_id=str(tweet["id"]), raw=tweet)
        return None


def _dicts(value) -> list[dict]:
    """The objects of a list in a page; anything else in it (or no list) is ignored."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _error_details(errors) -> str:
    items = errors if isinstance(errors, list) else [errors]
    return "; ".join(str(e.get("detail") or e.get("title") or e) if isinstance(e, dict) else str(e)
                     for e in items)[:300] or "no detail"


def _api_message(exc: tweepy.HTTPException) -> str:
    msgs = list(exc.api_messages or exc.api_errors or [])
    return "; ".join(str(m) for m in msgs)[:300] or exc.response.reason or "no detail"
