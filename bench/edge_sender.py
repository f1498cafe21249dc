"""The network's side of bench/edge_push.py: signed X Account Activity deliveries (one
tweet each) POSTed over HTTP to /hooks/twitter/<account>/ at a steady rate, open loop.

Run as its own process (`python -m bench.edge_sender < job.json > result.json`), with no
Django: what it costs is what X's side would cost, on the same cores as the product.
Open loop: delivery i is due at start + i / rate whatever the answers before it did; it
goes out on an idle keep-alive connection, or a new one (X opens as many as it needs), so
a slow web tier shows as latency and timeouts here, never as a lower offered rate.
Latency is timed from the due time (no coordinated omission) and from the write.

The mix of bench/mentions.py: 60% a new customer's first tweet, 25% a reply in a
customer's thread (in_reply_to_status_id_str: their previous tweet), 15% a returning
customer's new tweet. Each tweet's text starts with its id: the observer needs no map."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
import sys
import time

OPENERS = [
    "my order still hasn't arrived and it's been two weeks, where is it?",
    "your app keeps crashing when I try to pay, fix it please",
    "I was charged twice for the same order, I want a refund",
    "love the new update, the dark mode looks great!",
    "can someone tell me when the store opens on Sunday?",
    "the delivery driver left my parcel in the rain, it's ruined",
    "warum funktioniert die App seit gestern nicht mehr?",
    "the checkout page gives me error 500 every time I pay",
]
FOLLOW_UPS = ["any news on this?", "still waiting...", "thanks, that worked!", "order number is {n}",
              "this is getting ridiculous", "ok I sent you a DM"]


def deliveries(*, n: int, base_id: int, for_user: str, secret: str, seed: int = 19) -> list[tuple[str, bytes, str]]:
    """(tweet id, body, signature header) for n deliveries, oldest first."""
    rng = random.Random(seed)
    authors: list[list[str]] = []  # [user id, last tweet id]
    out = []
    for i in range(n):
        tweet_id = str(base_id + i)
        roll = rng.random()
        reply_to = None
        if not authors or roll < 0.6:
            author = [str(base_id * 10 + i), tweet_id]
            authors.append(author)
            text = rng.choice(OPENERS)
        else:
            author = authors[rng.randrange(len(authors))]
            if roll < 0.85:
                reply_to = author[1]
                text = rng.choice(FOLLOW_UPS).format(n=rng.randint(10000, 99999))
            else:
                text = rng.choice(OPENERS)
            author[1] = tweet_id
        user_id = author[0]
        tweet = {"created_at": time.strftime("%a %b %d %H:%M:%S +0000 %Y", time.gmtime()), "id_str": tweet_id,
                 "text": f"{tweet_id} @acme {text}", "lang": "en",  # X tags every tweet (docs/sentiment.md)
                 "user": {"id_str": user_id, "screen_name": f"c{user_id}", "name": f"Customer {user_id}",
                          "followers_count": rng.choice([3, 40, 120, 900, 15000]),
                          "profile_image_url_https": "", "verified": False},
                 "in_reply_to_status_id_str": reply_to, "entities": {"user_mentions": [{"id_str": for_user}]}}
        body = json.dumps({"for_user_id": for_user, "tweet_create_events": [tweet]}).encode()
        signature = "sha256=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
        out.append((tweet_id, body, signature))
    return out


# A connection idle this long is not reused, as HTTP clients keep their idle timeout below the
# server's (deploy/gunicorn.conf.py: 75 s): reused as the server closed it, a request got no answer
# (what the 26 of 60,000 unanswered sends of the 5-minute run of 2026-12-07 looked like).
IDLE_KEEP_SECONDS = 60.0


async def _send_all(job: dict, items: list[tuple[str, bytes, str]]) -> list[list]:
    host, port, path = job["host"], job["port"], job["path"]
    timeout = job.get("timeout", 30.0)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []  # with when each was last used
    results: list[list] = [None] * len(items)  # type: ignore[list-item]
    opened = [0]

    async def one(i: int, due: float) -> None:
        tweet_id, body, signature = items[i]
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nX-Forwarded-Proto: https\r\n"
                f"x-twitter-webhooks-signature: {signature}\r\n\r\n").encode()
        status, sent = 0, time.time()
        conn = None
        while idle and conn is None:
            reader_, writer_, last_used = idle.pop()
            if time.time() - last_used < IDLE_KEEP_SECONDS:
                conn = (reader_, writer_)
            else:  # the server may be closing it as we write (its keep-alive is 75 s): a request lost
                writer_.close()
        try:
            if conn is None:
                opened[0] += 1
                conn = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            reader, writer = conn
            sent = time.time()
            writer.write(head + body)
            header = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            status = int(header.split(b" ", 2)[1])
            length, chunked = 0, False
            for line in header.split(b"\r\n"):
                lower = line.lower()
                if lower.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
                elif lower.startswith(b"transfer-encoding:") and b"chunked" in lower:
                    chunked = True
            if chunked:  # read to the last chunk, or the next response on this connection starts mid-body
                while True:
                    size = int((await asyncio.wait_for(reader.readuntil(b"\r\n"), timeout)).strip(), 16)
                    await asyncio.wait_for(reader.readexactly(size + 2), timeout)
                    if size == 0:
                        break
            elif length:
                await asyncio.wait_for(reader.readexactly(length), timeout)
            if b"connection: close" in header.lower():
                writer.close()
            else:
                idle.append((*conn, time.time()))
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
            status = status or -1
            if conn is not None:
                conn[1].close()
        results[i] = [tweet_id, due, sent, time.time(), status]

    start = time.time() + job.get("start_delay", 1.0)  # the bodies are built and signed before
    rate = job["rate"]
    tasks = []
    for i in range(len(items)):
        due = start + i / rate
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(i, due)))
    await asyncio.gather(*tasks)
    for _, writer, _ in idle:
        writer.close()
    return results, opened[0]


def main() -> None:
    job = json.load(sys.stdin)
    items = deliveries(n=job["n"], base_id=job["base_id"], for_user=job["for_user"], secret=job["secret"])
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    results, opened = asyncio.run(_send_all(job, items))
    json.dump({"results": results, "connections": opened}, sys.stdout)


if __name__ == "__main__":
    main()
