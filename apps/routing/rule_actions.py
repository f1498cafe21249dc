"""What routing rules do to a conversation: each active rule in order, its matches told
in the trail, its actions gathered into one RuleOutcome (queue, priority, tags, an
agent or team, an auto-reply, a disposition) that the pipeline applies
(services.py). Whether a rule matches, and why, is rules.py."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import SimpleNamespace

from apps.accounts.models import Team, User
from apps.core.errors import DomainError
from apps.inbox.canned import canned_render
from apps.inbox.models import Conversation, Queue
from apps.inbox.services import reply_create

from .config_cache import RoutingCache
from .rules import RuleContext, rule_matches
from .scoring import BUCKET_NAMES
from .trail import Trail

log = logging.getLogger(__name__)


@dataclass
class RuleOutcome:
    queue: Queue | None = None
    bucket: int | None = None
    boost: int = 0
    rule_name: str = ""
    tags: list[str] = field(default_factory=list)
    agent: User | None = None
    team: Team | None = None
    auto_reply: object = None
    disposition: str = ""


def rules_run(conversation: Conversation, ctx: RuleContext, cache: RoutingCache, trail: Trail) -> RuleOutcome:
    """Applies active rules in order. A rule that fails is logged on the
    conversation ("rule_error") and skipped: it never blocks routing."""
    outcome = RuleOutcome()
    for rule in cache.rules:
        try:
            matched, why = rule_matches(rule, ctx, cache.rule_accounts(rule))
        except Exception as exc:  # noqa: BLE001 - any failure of one rule is logged and skipped
            log.warning("routing rule %s failed on conversation %s: %s", rule.pk, conversation.pk, exc)
            trail.event(conversation, "rule_error", rule_id=rule.pk, rule=rule.name,
                        error=str(exc)[:500], reason=f"skipped: {str(exc)[:200]}")
            continue
        if not matched:
            continue
        actions = []
        if rule.set_queue_id:
            outcome.queue = rule.set_queue
            actions.append(f"queue {rule.set_queue.name}")
        if rule.set_priority_bucket is not None:
            outcome.bucket, outcome.rule_name = rule.set_priority_bucket, rule.name
            actions.append(f"priority {BUCKET_NAMES[rule.set_priority_bucket]}")
        if rule.priority_boost:
            outcome.boost += rule.priority_boost
            outcome.rule_name = rule.name
            actions.append(f"priority {rule.priority_boost:+d}")
        for tag in rule.add_tags or []:
            if str(tag).strip() and str(tag).strip() not in outcome.tags:
                outcome.tags.append(str(tag).strip()[:64])
        if rule.add_tags:
            actions.append("tags " + ", ".join(str(t) for t in rule.add_tags))
        if rule.assign_agent_id:
            outcome.agent = rule.assign_agent
            actions.append(f"assign {rule.assign_agent.username}")
        if rule.assign_team_id:
            outcome.team = rule.assign_team
            actions.append(f"assign team {rule.assign_team.name}")
        if rule.auto_reply_id:
            outcome.auto_reply = rule.auto_reply
            actions.append(f"auto-reply /{rule.auto_reply.shortcut}")
        if rule.disposition:
            outcome.disposition = rule.disposition
            actions.append(rule.disposition)
        if rule.stop:
            actions.append("stop")
        trail.event(conversation, "routed", rule_id=rule.pk, rule=rule.name, why=why,
                    actions=actions, reason=f"{', '.join(why)} → {', '.join(actions) or 'no action'}")
        if rule.stop:
            break
    return outcome


def auto_reply_text(canned, conversation: Conversation) -> str:
    """The canned reply's text with its variables filled; the sender is the team, not an agent."""
    team = SimpleNamespace(first_name="", username="", display_name="", last_name="", signature="")
    return canned_render(canned.text, conversation=conversation, agent=team)


def auto_reply_send(conversation: Conversation, canned) -> None:
    try:
        reply_create(conversation=conversation, agent=None, text=auto_reply_text(canned, conversation),
                     is_bot=True)
    except DomainError as exc:
        # the routing itself stands; the trail says why no auto-reply went out
        trail = Trail()
        trail.event(conversation, "rule_error", rule=None, error=f"auto-reply: {exc.detail}",
                    reason=f"auto-reply not sent: {exc.detail}")
        trail.write()
