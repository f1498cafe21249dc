"""The connector interface. A provider is the only code that knows a network's
payload shape: it fetches, normalizes to InboundMention, and posts replies."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class InboundMention:
    external_id: str
    text: str
    created_at: dt.datetime
    author_external_id: str
    author_handle: str
    author_name: str = ""
    author_followers: int = 0
    author_avatar_url: str = ""
    author_profile_url: str = ""
    author_verified: bool = False
    # Platform thread id (tweet conversation_id...), and the message it answers.
    thread_id: str = ""
    in_reply_to_external_id: str = ""
    quoted_text: str = ""
    url: str = ""
    is_private: bool = False
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PollResult:
    mentions: list[InboundMention]
    # The cursor to store once the mentions are committed.
    cursor: dict
    # False when the poll stopped early (page limit): poll again soon.
    complete: bool = True


@dataclass(frozen=True)
class OutboundReply:
    text: str
    in_reply_to_external_id: str
    is_private: bool
    recipient_external_id: str
    client_reference: str  # our Message id, to recognise our own post when checking


@dataclass(frozen=True)
class SentReply:
    external_id: str
    url: str = ""
    raw: dict = field(default_factory=dict)


class ProviderError(Exception):
    """A network call failed; `reason` is shown to users."""

    retryable = True

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class AuthError(ProviderError):
    """401/403: credentials revoked or missing scope. Retried with backoff, shown on the account."""


class PermanentError(ProviderError):
    """The network refused this request (400, duplicate, deleted tweet): retrying will not help."""

    retryable = False


class RateLimited(ProviderError):
    def __init__(self, reason: str, reset_at: dt.datetime):
        super().__init__(reason)
        self.reset_at = reset_at


class TransientError(ProviderError):
    """5xx, timeouts, connection errors, malformed JSON: try again later."""


class UnknownOutcome(TransientError):
    """The request may have reached the network (timeout after sending): check before any retry."""


class BaseProvider:
    name = ""
    # Longest public reply the network accepts, shown by the composer.
    max_reply_length = 280
    supports_private_replies = False
    # Longest direct message, where it differs from a public reply (X: 10,000).
    max_private_reply_length: int | None = None

    @classmethod
    def reply_limit(cls, *, private: bool) -> int:
        """The length limit of one reply mode: what the composer counts against."""
        if private and cls.max_private_reply_length:
            return cls.max_private_reply_length
        return cls.max_reply_length

    def __init__(self, account):
        self.account = account

    def fetch_mentions(self, cursor: dict) -> PollResult:  # pragma: no cover - interface
        raise NotImplementedError

    def send_reply(self, reply: OutboundReply) -> SentReply:  # pragma: no cover - interface
        raise NotImplementedError

    def find_sent_reply(self, reply: OutboundReply) -> SentReply | None:
        """Look on the network for a reply we may already have posted (unknown outcome)."""
        return None


def mention_to_dict(mention: InboundMention) -> dict:
    """JSON-safe form, for handing mentions to a task."""
    from dataclasses import asdict

    data = asdict(mention)
    data["created_at"] = mention.created_at.isoformat()
    return data


def mention_from_dict(data: dict) -> InboundMention:
    data = dict(data)
    data["created_at"] = dt.datetime.fromisoformat(data["created_at"])
    return InboundMention(**data)
