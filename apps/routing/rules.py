"""Routing rule conditions (no writes): does a rule match a conversation's new
messages, and in words, why. Actions are applied in services.py."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

MAX_REGEX_TEXT = 5000  # a pathological pattern on a long text must not stall a worker for long


class RuleError(Exception):
    """The rule cannot be evaluated (bad regex, bad stored data)."""


@dataclass(frozen=True)
class RuleContext:
    text: str
    channel: str
    channel_account_id: int
    language: str
    sentiment_label: str
    followers: int
    customer_tags: frozenset[str] = frozenset()
    customer_tier: str = "standard"
    is_public: bool = True
    # team id (None: the queue's team) -> inside business hours now?
    inside_hours: Callable[[int | None], bool] = field(default=lambda team_id: True)


def _keyword_hit(text: str, keywords: list[str]) -> str | None:
    lowered = text.lower()
    for keyword in keywords:
        kw = str(keyword).strip().lower()
        if kw and re.search(r"(?<!\w)" + re.escape(kw) + r"(?!\w)", lowered):
            return kw
    return None


def rule_matches(rule, ctx: RuleContext, account_ids: set[int] | None = None) -> tuple[bool, list[str]]:
    """(matched, why). `account_ids`: the rule's channel accounts (prefetched)."""
    why: list[str] = []
    if not isinstance(rule.channels, list) or not isinstance(rule.keywords, list):
        raise RuleError("channels and keywords must be lists")
    if rule.channels:
        if ctx.channel not in rule.channels:
            return False, []
        why.append(f"channel {ctx.channel}")
    if account_ids:
        if ctx.channel_account_id not in account_ids:
            return False, []
        why.append("account")
    if rule.keywords:
        hit = _keyword_hit(ctx.text, rule.keywords)
        if hit is None:
            return False, []
        why.append(f'keyword "{hit}"')
    if rule.regex:
        try:
            pattern = re.compile(rule.regex, re.IGNORECASE)
        except re.error as exc:
            raise RuleError(f"bad regular expression: {exc}") from None
        match = pattern.search(ctx.text[:MAX_REGEX_TEXT])
        if not match:
            return False, []
        why.append(f'regex matched "{match.group(0)[:40]}"')
    if rule.languages:
        if ctx.language not in rule.languages:
            return False, []
        why.append(f"language {ctx.language or 'unknown'}")
    if rule.sentiments:
        if ctx.sentiment_label not in rule.sentiments:
            return False, []
        why.append(f"sentiment {ctx.sentiment_label}")
    if rule.min_followers is not None:
        if ctx.followers < rule.min_followers:
            return False, []
        why.append(f"{ctx.followers:,} followers >= {rule.min_followers:,}")
    if rule.max_followers is not None:
        if ctx.followers > rule.max_followers:
            return False, []
        why.append(f"{ctx.followers:,} followers <= {rule.max_followers:,}")
    if rule.customer_tags:
        common = ctx.customer_tags & {str(t) for t in rule.customer_tags}
        if not common:
            return False, []
        why.append(f"customer tag {sorted(common)[0]}")
    if rule.customer_tiers:
        if ctx.customer_tier not in rule.customer_tiers:
            return False, []
        why.append(f"customer tier {ctx.customer_tier}")
    if rule.hours != "any":
        inside = ctx.inside_hours(rule.hours_team_id)
        if inside != (rule.hours == "inside"):
            return False, []
        why.append("inside business hours" if inside else "outside business hours")
    if rule.visibility != "any":
        if ctx.is_public != (rule.visibility == "public"):
            return False, []
        why.append("public post" if ctx.is_public else "direct message")
    return True, why or ["matches everything"]
