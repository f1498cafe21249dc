"""How much of a message the text analysers read.

A message is stored whole, but language, sentiment, topics, urgency terms and routing
rules read only its first `ANALYZED_CHARS` characters: a hostile 100k-character
message kept VADER busy ~50 s (its cost grows faster than the text) while ingest's
transaction waited. What a customer says first decides these anyway; 5,000 characters
is 18 tweets or a long e-mail, and all analysers together take under 0.1 s on it (docs/sentiment.md)."""
from __future__ import annotations

ANALYZED_CHARS = 5000


def analyzed_part(text: str | None) -> str:
    """The part of `text` the analysers read (never None)."""
    return (text or "")[:ANALYZED_CHARS]
