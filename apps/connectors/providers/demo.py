"""A simulated social network for `make run`: a steady stream of realistic
mentions (complaints, questions, praise, follow-ups to our replies) and a reply
endpoint that accepts posts, and sometimes refuses them as a real network does
(DEMO_NETWORK_FAILURE_RATE: a 429 with Retry-After, or a 500). No network, no
credentials, no links: a simulated post has no page anywhere to link to.

The demo's email and Mastodon accounts are simulated too (ChannelAccount.is_simulated):
their provider is this one, with the limits of the network they stand for
(`simulated_provider_class`)."""
from __future__ import annotations

import datetime as dt
import random
import uuid

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from . import demo_texts
from .base import (BaseProvider, ConnectionCheck, InboundMention, OutboundReply, PollResult, RateLimited, SentReply,
                   TransientError)

RECENT_REPLIES = 10  # the replies a simulated customer may answer
RECENT_REPLIES_SECONDS = 7 * 86400

PEOPLE = [
    ("maria_g", "María García", 1200), ("tomwrites", "Tom Becker", 88), ("priya.k", "Priya Kumar", 15400),
    ("jdoe", "John Doe", 43), ("sam_travels", "Sam Ortiz", 5230), ("lea_m", "Léa Martin", 310),
    ("kenji_t", "Kenji Tanaka", 970), ("bigcorp_it", "BigCorp IT", 250000), ("anna_b", "Anna Berg", 12),
    ("mo_ali", "Mohammed Ali", 2040), ("chloe.r", "Chloe Reed", 640), ("dev_nik", "Nikolai Ivanov", 7800),
]
OPENERS = [text for topic in demo_texts.TOPICS.values() for text in topic["openers"]]
FOLLOW_UPS = [text for topic in demo_texts.TOPICS.values() for text in topic["follow_ups"]]
# What the network is told the language is (as X, Mastodon and Bluesky tag posts).
LANGUAGE_HINTS = {"¿": "es", "gracias": "es", "pourquoi": "fr"}

# A refusal, as the network would word it; the reason is what the agent sees in the thread.
RATE_LIMITED_REASON = "The demo network answered 429 Too Many Requests (Retry-After: {seconds} s)."
SERVER_ERROR_REASON = "The demo network answered 500 Internal Server Error."


def language_hint(text: str) -> str:
    low = text.lower()
    return next((lang for marker, lang in LANGUAGE_HINTS.items() if marker in low), "en")


def order_number(rng: random.Random) -> str:
    return f"{rng.randint(100, 999)}-{rng.randint(10000, 99999)}"


class DemoProvider(BaseProvider):
    name = "demo"
    max_reply_length = 280
    supports_private_replies = True
    max_private_reply_length = 10000  # like X: DMs are longer than posts

    def connection_check(self) -> ConnectionCheck:
        return ConnectionCheck(detail="The simulated network needs no credentials: it always answers")

    def fetch_mentions(self, cursor: dict) -> PollResult:
        seq = int(cursor.get("seq", 0))
        rng = random.Random()
        count = rng.randint(0, settings.DEMO_MENTIONS_PER_POLL)
        recent = self._recent_replies() if rng.random() < 0.5 else []
        mentions = []
        now = timezone.now()
        private = self.account.provider == "email"  # an email is never public
        prefix = "" if private else f"{self.account.handle} "
        for i in range(count):
            seq += 1
            handle, name, followers = rng.choice(PEOPLE)
            text, reply_to, thread = prefix + rng.choice(OPENERS).format(order=order_number(rng)), "", ""
            if recent and i == 0:
                # a customer answering one of our replies
                out = rng.choice(recent)
                handle = out["handle"] or handle
                name, followers = next(((n, f) for h, n, f in PEOPLE if h == handle), (handle, 100))
                text = prefix + rng.choice(FOLLOW_UPS).format(order=order_number(rng))
                reply_to, thread = out["external_id"], out["thread"]
            ext = f"demo-{self.account.pk}-{seq}-{uuid.uuid4().hex[:6]}"
            mentions.append(
                InboundMention(
                    external_id=ext, text=text, created_at=now - dt.timedelta(seconds=count - i),
                    author_external_id=f"demo-user-{handle}", author_handle=handle, author_name=name,
                    author_followers=followers, thread_id=thread or ext, in_reply_to_external_id=reply_to,
                    is_private=private, language=language_hint(text), raw={"simulated": True, "seq": seq},
                )
            )
        return PollResult(mentions, {"seq": seq})

    def _recent_key(self) -> str:
        return f"demo-replies:{self.account.pk}"

    def _recent_replies(self) -> list[dict]:
        """The last replies "posted" to the simulated network (newest first), remembered by
        send_reply as a network would: its customers answer them."""
        return list(reversed(cache.get(self._recent_key()) or []))

    def send_reply(self, reply: OutboundReply) -> SentReply:
        self._maybe_refuse()
        ext = f"demo-out-{uuid.uuid4().hex[:12]}"
        recent = (cache.get(self._recent_key()) or [])[-(RECENT_REPLIES - 1):]
        recent.append({"external_id": ext, "handle": reply.recipient_external_id.removeprefix("demo-user-"),
                       "thread": reply.in_reply_to_external_id})
        cache.set(self._recent_key(), recent, RECENT_REPLIES_SECONDS)
        return SentReply(external_id=ext)  # no url: a simulated post has no page

    def _maybe_refuse(self) -> None:
        """DEMO_NETWORK_FAILURE_RATE of the posts are refused, half with a 429 (Retry-After
        5-30 s: the reply waits for it), half with a 500 (retried with backoff)."""
        rate = float(getattr(settings, "DEMO_NETWORK_FAILURE_RATE", 0.0) or 0.0)
        if rate <= 0 or random.random() >= rate:
            return
        if random.random() < 0.5:
            seconds = random.randint(5, 30)
            raise RateLimited(RATE_LIMITED_REASON.format(seconds=seconds),
                              reset_at=timezone.now() + dt.timedelta(seconds=seconds))
        raise TransientError(SERVER_ERROR_REASON)


_SIMULATED: dict[type, type] = {}


def simulated_provider_class(network: type[BaseProvider]) -> type[BaseProvider]:
    """The simulated network standing in for `network` on a demo account: its name and
    reply limits, the demo network's stream and reply endpoint."""
    if network is DemoProvider:
        return DemoProvider
    if network not in _SIMULATED:
        _SIMULATED[network] = type(f"Simulated{network.__name__}", (DemoProvider,), {
            "name": network.name, "max_reply_length": network.max_reply_length,
            "supports_private_replies": network.supports_private_replies,
            "max_private_reply_length": network.max_private_reply_length,
            "supports_polling": True, "supports_push": False,
        })
    return _SIMULATED[network]
