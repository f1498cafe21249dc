"""A simulated social network for `make run`: a steady stream of realistic
mentions (complaints, questions, praise, follow-ups to our replies) and a reply
endpoint that accepts posts. No network, no credentials."""
from __future__ import annotations

import datetime as dt
import random
import uuid

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from .base import BaseProvider, ConnectionCheck, InboundMention, OutboundReply, PollResult, SentReply

RECENT_REPLIES = 10  # the replies a simulated customer may answer
RECENT_REPLIES_SECONDS = 7 * 86400

PEOPLE = [
    ("maria_g", "María García", 1200), ("tomwrites", "Tom Becker", 88), ("priya.k", "Priya Kumar", 15400),
    ("jdoe", "John Doe", 43), ("sam_travels", "Sam Ortiz", 5230), ("lea_m", "Léa Martin", 310),
    ("kenji_t", "Kenji Tanaka", 970), ("bigcorp_it", "BigCorp IT", 250000), ("anna_b", "Anna Berg", 12),
    ("mo_ali", "Mohammed Ali", 2040), ("chloe.r", "Chloe Reed", 640), ("dev_nik", "Nikolai Ivanov", 7800),
]
OPENERS = [
    "my order #{n} still hasn't arrived and it's been two weeks. Where is it?",
    "I was charged twice this month. I want a refund now.",
    "the app keeps crashing when I open settings. Completely broken since the update.",
    "is there an outage? Nothing loads for me since 9am.",
    "how do I change the email on my account?",
    "thanks for the quick fix yesterday, you folks are great!",
    "I've been on hold for an hour. Terrible service, thinking about cancelling.",
    "love the new dashboard, really clean 😍",
    "can you add dark mode to the mobile app please?",
    "my package arrived damaged. What now?",
    "I'll talk to my lawyer if this isn't sorted by Friday.",
    "why was my account suspended without any warning??",
    "¿alguien me puede ayudar? No puedo iniciar sesión desde ayer.",
    "pourquoi ma commande est-elle annulée ? Je suis très déçue.",
    "the delivery driver was super friendly today, shout out!",
    "where can I download my invoices?",
]
FOLLOW_UPS = [
    "still waiting on this...", "thanks, that worked!", "I sent you a DM with the details.",
    "that doesn't help at all.", "ok, order number is {n}", "great, appreciate it 🙏",
]


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
        for i in range(count):
            seq += 1
            handle, name, followers = rng.choice(PEOPLE)
            text, reply_to, thread = f"{self.account.handle} " + rng.choice(OPENERS).format(n=rng.randint(10000, 99999)), "", ""
            if recent and i == 0:
                # a customer answering one of our replies
                out = rng.choice(recent)
                handle = out["handle"] or handle
                name, followers = next(((n, f) for h, n, f in PEOPLE if h == handle), (handle, 100))
                text = f"{self.account.handle} " + rng.choice(FOLLOW_UPS).format(n=rng.randint(10000, 99999))
                reply_to, thread = out["external_id"], out["thread"]
            ext = f"demo-{self.account.pk}-{seq}-{uuid.uuid4().hex[:6]}"
            mentions.append(
                InboundMention(
                    external_id=ext, text=text, created_at=now - dt.timedelta(seconds=count - i),
                    author_external_id=f"demo-user-{handle}", author_handle=handle, author_name=name,
                    author_followers=followers, author_profile_url=f"https://demo.invalid/{handle}",
                    thread_id=thread or ext, in_reply_to_external_id=reply_to,
                    url=f"https://demo.invalid/{handle}/status/{ext}", raw={"simulated": True, "seq": seq},
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
        ext = f"demo-out-{uuid.uuid4().hex[:12]}"
        recent = (cache.get(self._recent_key()) or [])[-(RECENT_REPLIES - 1):]
        recent.append({"external_id": ext, "handle": reply.recipient_external_id.removeprefix("demo-user-"),
                       "thread": reply.in_reply_to_external_id})
        cache.set(self._recent_key(), recent, RECENT_REPLIES_SECONDS)
        return SentReply(external_id=ext, url=f"https://demo.invalid/{self.account.handle.lstrip('@')}/status/{ext}")
