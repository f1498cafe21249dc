"""Priority score 0-100 (pure): how soon a conversation needs a human.

Every point comes with a reason, shown in the audit trail ("priority_set")
and the thread, so an agent can see why a conversation is at the top."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from apps.inbox.priority import BUCKET_FLOORS, bucket_for  # noqa: F401 - bucket_for: read here by routing and its tests
from apps.insights.bounds import analyzed_part

BASE = 30
BUCKET_NAMES = {0: "urgent", 1: "high", 2: "normal", 3: "low"}

# Urgency terms by kind; a kind counts once however often its words appear.
URGENCY_TERMS: dict[str, tuple[int, tuple[str, ...]]] = {
    "legal": (25, ("legal action", "lawyer", "attorney", "lawsuit", "sue you", "suing", "court",
                   "trading standards", "ombudsman", "regulator")),
    "security": (20, ("hacked", "fraud", "fraudulent", "stolen", "unauthorized", "unauthorised", "data breach",
                      "phishing", "scam")),
    "outage": (15, ("outage", "is down", "are down", "not working", "doesn't work", "does not work", "broken",
                    "can't log in", "cannot log in", "can't login", "error", "crash", "crashed", "crashing")),
    "money": (12, ("refund", "chargeback", "charged twice", "double charged", "overcharged", "money back",
                   "billing", "invoice")),
    "churn": (12, ("cancel", "cancelling", "canceling", "close my account", "switching to", "leaving you")),
    "urgent": (10, ("urgent", "asap", "emergency", "immediately", "right now")),
}
URGENCY_CAP = 35
_TERM_RES = {
    kind: re.compile(r"(?<![\w])(" + "|".join(re.escape(t) for t in terms) + r")(?![\w])", re.IGNORECASE)
    for kind, (_w, terms) in URGENCY_TERMS.items()
}


def urgency_terms(text: str) -> dict[str, str]:
    """{kind: the first matching term} for each urgency kind in the text's first
    ANALYZED_CHARS characters (insights/bounds.py: a hostile message must not hold routing)."""
    found = {}
    text = analyzed_part(text)
    for kind, pattern in _TERM_RES.items():
        match = pattern.search(text)
        if match:
            found[kind] = match.group(1).lower()
    return found


@dataclass(frozen=True)
class PriorityInputs:
    sentiment: float | None = None  # VADER compound of the latest scored customer message
    urgency: dict[str, str] = field(default_factory=dict)  # urgency_terms() of the cycle's customer messages
    followers: int = 0
    verified: bool = False
    vip: bool = False
    is_public: bool = True
    waiting_minutes: float = 0.0  # since the oldest customer message we have not answered
    rule_boost: int = 0
    bucket_override: int | None = None  # a rule's "set priority"
    rule_name: str = ""

    def to_json(self) -> dict:
        # asdict() without its recursive deep copy (a routing batch scores every conversation):
        # the only container is the urgency dict of strings, copied here
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["urgency"] = dict(self.urgency)
        return data

    @classmethod
    def from_json(cls, data: dict) -> PriorityInputs:
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class Priority:
    score: int
    bucket: int
    reasons: list[str]

    @property
    def bucket_name(self) -> str:
        return BUCKET_NAMES[self.bucket]


def _bucket_range(bucket: int) -> tuple[int, int]:
    floors = dict((b, f) for f, b in BUCKET_FLOORS)
    low = floors[bucket]
    high = floors[bucket - 1] - 1 if bucket > 0 else 100
    return low, high


def reach_points(followers: int, verified: bool) -> int:
    # log scale: 1k followers +5, 10k +10, 100k +15, 1M+ +20
    points = 0 if followers < 1000 else min(20, 5 * int(math.log10(max(followers, 1)) - 2))
    if verified:
        points += 5
    return min(points, 20)


def waiting_points(minutes: float) -> int:
    # one point per 10 minutes unanswered, up to 25: old conversations climb
    return int(min(max(minutes, 0) // 10, 25))


def priority_score(inputs: PriorityInputs) -> Priority:
    score, reasons = BASE, [f"{BASE} base"]

    def add(points: int, why: str):
        nonlocal score
        if points:
            score += points
            reasons.append(f"{points:+d} {why}")

    s = inputs.sentiment
    if s is not None and s <= -0.05:
        add(max(1, round(-s * 20)), f"negative sentiment ({s:.2f})")
    elif s is not None and s >= 0.5:
        add(-5, f"positive sentiment ({s:.2f})")

    urgency = 0
    for kind, term in sorted(inputs.urgency.items(), key=lambda kv: -URGENCY_TERMS[kv[0]][0]):
        weight = min(URGENCY_TERMS[kind][0], URGENCY_CAP - urgency)
        if weight <= 0:
            break
        urgency += weight
        add(weight, f'{kind} term "{term}"')

    add(reach_points(inputs.followers, inputs.verified),
        f"author reach ({inputs.followers:,} followers{', verified' if inputs.verified else ''})")
    if inputs.vip:
        add(15, "VIP customer")
    add(5 if inputs.is_public else 0, "public post (others can see it)")
    add(waiting_points(inputs.waiting_minutes), f"waiting {int(inputs.waiting_minutes)} min")
    add(max(-50, min(50, inputs.rule_boost)), f'rule "{inputs.rule_name}"')

    score = max(0, min(100, score))
    bucket = bucket_for(score)
    if inputs.bucket_override is not None and inputs.bucket_override != bucket:
        # a rule's bucket wins; the score moves into that bucket's range so sorting agrees
        low, high = _bucket_range(inputs.bucket_override)
        score = max(low, min(high, score))
        bucket = inputs.bucket_override
        reasons.append(f'bucket {BUCKET_NAMES[bucket]} set by rule "{inputs.rule_name}"')
    return Priority(score=score, bucket=bucket, reasons=reasons)
