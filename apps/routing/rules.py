"""Routing rule conditions (no writes): does a rule match a conversation's new
messages, and in words, why. Actions are applied in services.py."""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Callable

import re2

from apps.insights.bounds import ANALYZED_CHARS

# Rule expressions run on RE2: time linear in the text whatever the pattern (Python's `re`
# took ~77 s on 30 characters for `(a+)+$`). RE2 refuses what needs backtracking
# (look-around, back-references); such a rule is refused when saved, and one saved before
# is skipped by routing (rule_error) and marked on the rules page.
MAX_REGEX_LENGTH = 500  # the column's size
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.case_sensitive = False
_RE2_OPTIONS.log_errors = False  # refused patterns are the user's error, said in the 400
_RE2_OPTIONS.max_mem = 2 << 20  # per compiled rule (RE2 caches up to 128); a bigger one is "too large"
_RE2_HINTS = [  # RE2's reason -> what to write instead
    (re.compile(r"invalid perl operator: \(\?<?[=!]"), "look-around is not supported"),
    (re.compile(r"invalid escape sequence: \\[1-9]"), "back-references are not supported"),
    (re.compile(r"invalid escape sequence: \\Z"), "write \\z for the end of the text"),
]


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


@functools.lru_cache(maxsize=1024)  # a batch evaluates each rule per conversation: compile once
def regex_compile(pattern: str):
    """The rule's expression compiled by RE2 (case-insensitive); RuleError says why not."""
    if len(pattern) > MAX_REGEX_LENGTH:
        raise RuleError(f"bad regular expression: longer than {MAX_REGEX_LENGTH} characters")
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "refused"
        reason = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        hint = next((hint for key, hint in _RE2_HINTS if key.match(reason)), "")
        raise RuleError(f"bad regular expression: {reason} ({hint + '; ' if hint else ''}RE2 syntax)") from None
    except UnicodeError:
        raise RuleError("bad regular expression: not valid Unicode text") from None


def regex_problem(pattern: str) -> str | None:
    """Why the rule engine refuses this expression, or None (the rules page marks such a rule)."""
    if not pattern:
        return None
    try:
        regex_compile(pattern)
    except RuleError as exc:
        return str(exc).removeprefix("bad regular expression: ")
    return None


def _regex_search(pattern, text: str):
    try:
        return pattern.search(text)
    except UnicodeError:  # a lone surrogate (RE2 reads UTF-8)
        return pattern.search(text.encode("utf-8", "replace").decode("utf-8"))


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
    text = ctx.text[:ANALYZED_CHARS]  # conditions read a bounded prefix (insights/bounds.py)
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
        hit = _keyword_hit(text, rule.keywords)
        if hit is None:
            return False, []
        why.append(f'keyword "{hit}"')
    if rule.regex:
        match = _regex_search(regex_compile(rule.regex), text)
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
