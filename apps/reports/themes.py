"""Topics, hashtags, watched keywords and churn words in customer text (pure).

Topics are keyword families: transparent, offline, and good enough to group
complaints for marketing. Example posts shown to marketing are masked: handles,
e-mail addresses, phone numbers and links are replaced."""
from __future__ import annotations

import functools
import re

from django.conf import settings

from apps.insights.bounds import analyzed_part

TOPICS: dict[str, tuple[str, ...]] = {
    "billing": ("bill", "billing", "charge", "charged", "invoice", "refund", "payment", "price", "overcharged"),
    "delivery": ("delivery", "deliver", "delivered", "shipping", "shipped", "package", "parcel", "courier", "late"),
    "outage": ("outage", "down", "offline", "not working", "broken", "error", "crash", "crashes", "bug"),
    "account": ("account", "login", "log in", "password", "locked", "sign in", "signup", "sign up"),
    "support": ("support", "agent", "waiting", "no answer", "response", "hold", "ignored"),
    "product": ("product", "quality", "feature", "app", "update", "design", "size"),
    "praise": ("love", "thanks", "thank you", "great", "awesome", "amazing", "best"),
}

CHURN_WORDS = (
    "cancel", "cancelling", "canceling", "unsubscribe", "switching to", "switch to", "close my account",
    "never again", "leaving", "done with", "last time", "moving to", "competitor", "refund",
)

HASHTAG = re.compile(r"(?<![\w#])#(\w{2,50})", re.UNICODE)
_DIGITS = re.compile(r"\d+")
_HANDLE = re.compile(r"(?<![\w@])@\w{1,30}")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_URL = re.compile(r"https?://\S+")
_PHONE = re.compile(r"(?<!\d)(?:\+?\d[\d ().-]{7,}\d)")


# Compiled once: built per call (escape, then re's cache) they were ~70 searches and half
# of the reports applier's CPU a customer message (docs/performance-history.md, 2026-12-07).
@functools.lru_cache(maxsize=4096)
def _term_pattern(term: str) -> re.Pattern:
    return re.compile(r"(?<!\w)" + re.escape(term) + r"(?!\w)")


def _has(text: str, term: str) -> bool:
    return _term_pattern(term).search(text) is not None


# One search a topic: any of its words, whole (the same rule as _has, as one alternation)
_TOPIC_PATTERNS = {topic: re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)")
                   for topic, words in TOPICS.items()}


# Every function below reads the text's first ANALYZED_CHARS characters (insights/bounds.py):
# one search per term over a 1M-character message took seconds.


def topics_of(text: str) -> list[str]:
    low = analyzed_part(text).lower()
    return sorted(topic for topic, pattern in _TOPIC_PATTERNS.items() if pattern.search(low))


def is_hashtag(tag: str) -> bool:
    """A tag of digits only ("#26810") is an order or ticket number, not a hashtag: the
    networks themselves link a tag only when it has a letter (or an underscore)."""
    return _DIGITS.fullmatch(tag) is None


def hashtags_of(text: str) -> list[str]:
    return sorted({tag.lower() for tag in HASHTAG.findall(analyzed_part(text)) if is_hashtag(tag)})


def keywords_of(text: str) -> list[str]:
    low = analyzed_part(text).lower()
    watched = getattr(settings, "REPORTS_KEYWORDS", ())
    return sorted({w.lower() for w in watched if _has(low, w.lower())})


def churn_words_in(text: str) -> list[str]:
    low = analyzed_part(text).lower()
    return [w for w in CHURN_WORDS if _has(low, w)]


def mask(text: str, limit: int = 280) -> str:
    """The post without who wrote it or how to reach them."""
    text = _URL.sub("[link]", analyzed_part(text))
    text = _EMAIL.sub("[email]", text)
    text = _HANDLE.sub("@…", text)
    text = _PHONE.sub("[phone]", text)
    return text[:limit]
