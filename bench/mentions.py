"""Realistic normalized mentions for the ingest benchmarks: new customers, replies
in a thread, returning customers; mostly English, some other languages."""
from __future__ import annotations

import datetime as dt
import random

# The demo network's texts as they were when the figures of record were taken (the demo's own
# have changed since; a benchmark's input stays the same so runs compare), plus two more
# languages/errors for the language detector.
DEMO_OPENERS = [
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

OPENERS = DEMO_OPENERS + [
    "warum funktioniert die App seit gestern nicht mehr?",
    "the checkout page gives me error 500 every time I pay",
]


def make_mentions(n: int, tag: str, seed: int = 8, new_share: float = 0.6, reply_share: float = 0.25,
                  days_ago: float = 0) -> list[dict]:
    """n mention dicts (mention_to_dict form), oldest first. Shares: new customer
    with a new thread / reply in the author's thread / returning author, new tweet.
    The last one `days_ago` days before now."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=n, days=days_ago)
    authors: list[tuple[str, str, str]] = []  # (author id, root id, last id)
    out = []
    for i in range(n):
        ext = f"{tag}-{i}"
        roll = rng.random()
        reply_to, thread = "", ext
        if not authors or roll < new_share:
            author = f"{tag}-u{i}"
            authors.append((author, ext, ext))
            text = rng.choice(OPENERS)
        else:
            k = rng.randrange(len(authors))
            author, root, last = authors[k]
            if roll < new_share + reply_share:
                reply_to, thread = last, root
                authors[k] = (author, root, ext)
                text = rng.choice(FOLLOW_UPS)
            else:
                text = rng.choice(OPENERS)
        out.append({
            "external_id": ext, "text": f"@acme {text.format(n=rng.randint(10000, 99999))}",
            "created_at": (now + dt.timedelta(seconds=i)).isoformat(), "author_external_id": author,
            "author_handle": f"h{author}", "author_name": f"Customer {author}",
            "author_followers": rng.choice([3, 40, 120, 900, 15000]), "author_avatar_url": "",
            "author_profile_url": f"https://twitter.com/h{author}", "author_verified": False,
            "thread_id": thread, "in_reply_to_external_id": reply_to, "quoted_text": "",
            "url": f"https://twitter.com/h{author}/status/{ext}", "is_private": False,
            "raw": {"id": ext, "text": text, "author_id": author},
        })
    return out
