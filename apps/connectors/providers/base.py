"""The connector interface. A provider is the only code that knows a network's
payload shape: it fetches, normalizes to InboundMention, and posts replies."""
from __future__ import annotations

import datetime as dt
import email.utils
from dataclasses import dataclass, field, fields, replace

from apps.core import sanitize


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
    # The network's own language tag (X "lang", Mastodon "language", Bluesky "langs"), as
    # given: insights trusts it when it names a language instead of guessing (language.py).
    language: str = ""
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
    # What we stored of the message replied to (`raw`: an email's headers, for In-Reply-To and
    # References), handed in by the inbox: providers sit below it and never read its tables.
    parent_raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SentReply:
    external_id: str
    url: str = ""
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectionCheck:
    """What a successful "Test connection" found: who the credentials sign in as."""

    detail: str  # "Signed in as @acme (user id 783214)", shown to the admin
    external_user_id: str = ""  # the brand's id on the network, when the check learnt it
    handle: str = ""


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

    def connection_check(self) -> ConnectionCheck:
        """One cheap authenticated call with the account's credentials, against the configured
        base URL ("Test connection" on the Channels page). Raises the ProviderError kinds."""
        return ConnectionCheck(detail="This channel has no credentials to check.")


_MENTION_FIELDS = fields(InboundMention)


def mention_to_dict(mention: InboundMention) -> dict:
    """JSON-safe form, for handing mentions to a task. A shallow copy: asdict() deep-copied
    the raw payload of every mention, a tenth of a push delivery's time in the web tier."""
    data = {f.name: getattr(mention, f.name) for f in _MENTION_FIELDS}
    data["created_at"] = mention.created_at.isoformat()
    return data


def mention_from_dict(data: dict) -> InboundMention:
    data = dict(data)
    # a delivery stored before times were checked at the edge may hold year 9999
    data["created_at"] = network_time(dt.datetime.fromisoformat(data["created_at"]))
    return InboundMention(**data)


# --- the edge: what a network claims, made believable and storable ------------------
class MalformedPayload(ValueError):
    """A payload whose shape is not the network's: a push delivery is refused with 400
    and this reason; a polled item is skipped."""


def iso_time(value) -> dt.datetime:
    return dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))


def epoch_seconds(value) -> dt.datetime:
    return dt.datetime.fromtimestamp(float(value), tz=dt.timezone.utc)


def epoch_millis(value) -> dt.datetime:
    text = str(value).strip()
    if not text.isdigit() or len(text) > 15:  # 30 digits: year 10^20
        raise ValueError(value)
    return dt.datetime.fromtimestamp(int(text) / 1000, tz=dt.timezone.utc)


def v1_time(value) -> dt.datetime:
    """Twitter v1.1: "Mon Nov 23 08:00:00 +0000 2026"."""
    return dt.datetime.strptime(str(value), "%a %b %d %H:%M:%S %z %Y")


def rfc2822_time(value) -> dt.datetime:
    """An email Date header."""
    return email.utils.parsedate_to_datetime(str(value))


def network_time(value, parse=iso_time, *, arrival: dt.datetime | None = None) -> dt.datetime:
    """The time a network claims for a message, or the arrival time when the claim
    is missing, unparseable or absurd (years 1 or 9999, a 30-digit timestamp, more
    than a day ahead): every provider's normalize() reads its times through this."""
    from django.utils import timezone

    arrival = arrival or timezone.now()
    if value is None or value == "" or isinstance(value, bool):
        return arrival
    try:
        parsed = value if isinstance(value, dt.datetime) else parse(value)
    except (ValueError, TypeError, OverflowError, OSError, AttributeError, IndexError):
        return arrival
    return sanitize.time_sane(parsed, arrival=arrival)


def max_text_chars() -> int:
    from django.conf import settings

    return getattr(settings, "INGEST_MAX_TEXT_CHARS", 20000)


_URL_FIELDS = ("url", "author_avatar_url", "author_profile_url")


def mention_clean(m: InboundMention) -> InboundMention:
    """The rules of the edge, for every path (poll, push, email): text a database
    cannot hold becomes U+FFFD, text is capped at INGEST_MAX_TEXT_CHARS with a marker,
    URLs that are not http(s) are dropped, an absurd time becomes the arrival time.
    Idempotent: the push path applies it before storing the delivery, ingest again."""
    limit = max_text_chars()
    values = {}
    for f in fields(m):
        value = getattr(m, f.name)
        if f.type == "str" and not isinstance(value, str):  # an id sent as a number
            value = "" if value is None else str(value)
        elif f.type == "bool":
            value = bool(value)
        if isinstance(value, str):
            value = sanitize.text_clean(value)
        values[f.name] = value
    # ids and names are cut to their columns by ingest; the texts are capped here
    values["text"] = sanitize.text_cap(values["text"], limit)
    values["quoted_text"] = sanitize.text_cap(values["quoted_text"], limit)
    for name in _URL_FIELDS:
        values[name] = sanitize.http_url(values[name])
    values["raw"] = sanitize.data_clean(m.raw, limit) if isinstance(m.raw, dict) else {}
    values["created_at"] = network_time(m.created_at)
    try:
        values["author_followers"] = max(0, min(int(m.author_followers or 0), 2**31 - 1))
    except (TypeError, ValueError, OverflowError):
        values["author_followers"] = 0
    return replace(m, **values)


# --- payload shapes: small explicit checks for the receivers (cheap at 200 deliveries/s) ----
def shape_obj(value, path: str, *, optional: bool = False) -> dict:
    """An object (dict); None counts as {} when optional."""
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise MalformedPayload(f"{path} must be an object")
    return value


def shape_list(value, path: str) -> list:
    """A list (None counts as empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedPayload(f"{path} must be a list")
    return value


def language_tag(value) -> str:
    """A network's language tag as stored on the mention: a string (any other shape is no
    tag, never a refused delivery: the text matters, its tag is a hint), bounded."""
    return value[:35] if isinstance(value, str) else ""


def shape_str(obj: dict, key: str, path: str, *, required: bool = False, digits: bool = False) -> str:
    """A string field; a number is taken as its decimal string (ids sent as numbers)."""
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise MalformedPayload(f"{path}.{key} is missing")
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise MalformedPayload(f"{path}.{key} must be a string")
    if digits and not (value.isascii() and value.isdigit() and len(value) <= 32):
        raise MalformedPayload(f"{path}.{key} must be a numeric id")
    return value


def shape_int(obj: dict, key: str, path: str) -> int:
    """A count: a non-negative integer (or its decimal string); missing is 0."""
    value = obj.get(key)
    if value is None or value == "":
        return 0
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return min(value, 2**31 - 1)
    raise MalformedPayload(f"{path}.{key} must be a non-negative integer")


def lenient_count(value) -> int:
    """A follower count from a polled page: junk ("abc", a dict, -5) counts as 0 rather
    than failing the poll of every mention on the page, again on every poll."""
    try:
        return max(0, min(int(value or 0), 2**31 - 1))
    except (TypeError, ValueError, OverflowError):
        return 0


def normalize_or_skip(normalize, item, *args, network: str = ""):
    """A polled item of a shape normalize() cannot read is logged and skipped: raising
    would fail the poll, and every later poll, on the same item (a poison page)."""
    try:
        return normalize(item, *args)
    except (MalformedPayload, TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError):
        import logging

        logging.getLogger("apps.connectors.providers").warning(
            "%s: skipped a mention of an unexpected shape", network or "provider", exc_info=True)
        return None
