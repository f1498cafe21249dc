"""Routing's configuration, as supervisors and admins write it: rules (and their order),
SLA policies, business hours and holidays, queues. Each write checks that the teams it
names are the actor's (docs/roles.md, Ownership), is audited, and reaches every routing
process through the config version (cache.py reads it again). The pipeline that applies
this configuration to conversations is services.py."""
from __future__ import annotations

from django.db import transaction

from apps.accounts.models import Role, Team
from apps.accounts.permissions import can_manage_team, user_has_role
from apps.accounts.services import audit_record
from apps.core.errors import Conflict, DomainError
from apps.inbox.models import Conversation, PriorityBucket, Queue
from apps.inbox.tags import tag_name_check

from . import calendar as cal
from .models import BusinessHours, Holiday, RoutingRule, SlaPolicy
from .rules import regex_problem

# --- rules, SLA policies, business hours -----------------------------------------------------------

def _audit(actor, action: str, target, data: dict | None = None) -> None:
    audit_record(actor=actor, action=action, target=str(target), data=data or {})


RULE_FIELDS = [
    "name", "position", "is_active", "channels", "keywords", "regex", "languages", "sentiments", "min_followers",
    "max_followers", "customer_tags", "customer_tiers", "hours", "hours_team", "visibility", "set_queue",
    "set_priority_bucket", "priority_boost", "add_tags", "assign_agent", "assign_team", "auto_reply",
    "disposition", "stop",
]


def _rule_check(rule: RoutingRule) -> None:
    # Compiled by the engine routing runs it on (RE2, rules.py), so what is saved runs.
    problem = regex_problem(rule.regex) if rule.regex else None
    if problem:
        raise DomainError(f"The regular expression does not compile: {problem}.")
    for name in ("channels", "keywords", "languages", "sentiments", "customer_tags", "customer_tiers", "add_tags"):
        value = getattr(rule, name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DomainError(f"{name} must be a list of strings.")
    for tag in rule.add_tags:
        tag_name_check(tag)  # the one tag rule, as the inbox's tag box and the API follow it
    bad = set(rule.sentiments) - {"positive", "neutral", "negative", "not_scored"}
    if bad:
        raise DomainError(f"Unknown sentiment(s): {', '.join(sorted(bad))}.")
    if not -50 <= rule.priority_boost <= 50:
        raise DomainError("The priority boost must be between -50 and 50.")
    if rule.min_followers is not None and rule.max_followers is not None and rule.min_followers > rule.max_followers:
        raise DomainError("Minimum followers is above the maximum.")


def _owned_check(actor, *, queue=None, teams=(), agent=None) -> None:
    """The teams a supervisor's write names must be teams they lead (docs/roles.md,
    Ownership); admins and the system (actor None) name any. A 400 with the reason."""
    if actor is None or user_has_role(actor, Role.ADMIN):
        return
    if queue is not None and not can_manage_team(actor, queue.team):
        raise DomainError("That queue is not in a team you lead.")
    for team in teams:
        if team is not None and not can_manage_team(actor, team):
            raise DomainError("That team is not one you lead.")
    if agent is not None and not Team.objects.filter(leads=actor, members=agent).exists():
        raise DomainError("That agent is not in a team you lead.")


def _rule_owned_check(actor, rule: RoutingRule) -> None:
    auto_reply_team = rule.auto_reply.team if rule.auto_reply_id else None  # a team's canned wording is theirs
    _owned_check(actor, queue=rule.set_queue, teams=(rule.assign_team, rule.hours_team, auto_reply_team),
                 agent=rule.assign_agent)


@transaction.atomic
def rule_create(*, actor, channel_accounts=None, **values) -> RoutingRule:
    rule = RoutingRule(**{k: v for k, v in values.items() if k in RULE_FIELDS})
    if "position" not in values:  # a new rule goes last
        last = RoutingRule.objects.order_by("-position").values_list("position", flat=True).first()
        rule.position = (last or 0) + 10
    _rule_check(rule)
    _rule_owned_check(actor, rule)
    rule.save()
    if channel_accounts is not None:
        rule.channel_accounts.set(channel_accounts)
    _audit(actor, "rule.created", f"rule {rule.pk} {rule.name}", {"rule_id": rule.pk})
    return rule


@transaction.atomic
def rule_update(*, rule: RoutingRule, actor, channel_accounts=None, **values) -> RoutingRule:
    rule = RoutingRule.objects.select_for_update().get(pk=rule.pk)
    changed = {}
    for key, value in values.items():
        if key in RULE_FIELDS and getattr(rule, key) != value:
            changed[key] = str(value)[:200]
            setattr(rule, key, value)
    _rule_check(rule)
    _rule_owned_check(actor, rule)
    rule.save()
    if channel_accounts is not None:
        rule.channel_accounts.set(channel_accounts)
        changed["channel_accounts"] = [a.pk if hasattr(a, "pk") else a for a in channel_accounts]
    _audit(actor, "rule.updated", f"rule {rule.pk} {rule.name}", {"rule_id": rule.pk, "changed": changed})
    return rule


@transaction.atomic
def rule_delete(*, rule: RoutingRule, actor) -> None:
    _audit(actor, "rule.deleted", f"rule {rule.pk} {rule.name}", {"rule_id": rule.pk})
    rule.delete()


@transaction.atomic
def rules_reorder(*, rule_ids: list[int], actor) -> list[RoutingRule]:
    """Positions 10, 20, 30... in the given order; rules not listed keep theirs after."""
    if len(set(rule_ids)) != len(rule_ids):
        raise DomainError("A rule is listed twice in the new order.")
    rules = {r.pk: r for r in RoutingRule.objects.select_for_update().filter(pk__in=rule_ids)}
    if len(rules) != len(rule_ids):
        raise DomainError("Unknown rule id in the new order.")
    for index, rule_id in enumerate(rule_ids):
        rules[rule_id].position = (index + 1) * 10
        rules[rule_id].save(update_fields=["position", "updated_at"])
    _audit(actor, "rule.reordered", "rules", {"order": rule_ids})
    return [rules[i] for i in rule_ids]


SLA_POLICY_FIELDS = ["name", "queue", "priority_bucket", "first_response_minutes", "next_response_minutes",
                     "resolution_minutes", "business_hours_only", "is_active"]


def _sla_policy_check(policy: SlaPolicy) -> None:
    if not any([policy.first_response_minutes, policy.next_response_minutes, policy.resolution_minutes]):
        raise DomainError("Set at least one target (first response, next response or resolution).")
    if policy.priority_bucket is not None and policy.priority_bucket not in PriorityBucket.values:
        raise DomainError("Priority must be 0 (urgent) to 3 (low), or empty for all.")
    clash = SlaPolicy.objects.filter(is_active=True, queue=policy.queue, priority_bucket=policy.priority_bucket)
    if policy.is_active and clash.exclude(pk=policy.pk).exists():
        raise DomainError("An active policy for this queue and priority exists already.")


@transaction.atomic
def sla_policy_create(*, actor, **values) -> SlaPolicy:
    policy = SlaPolicy(**{k: v for k, v in values.items() if k in SLA_POLICY_FIELDS})
    _sla_policy_check(policy)
    _owned_check(actor, queue=policy.queue)
    policy.save()
    _audit(actor, "sla.created", f"sla policy {policy.pk} {policy.name}", {"policy_id": policy.pk})
    return policy


@transaction.atomic
def sla_policy_update(*, policy: SlaPolicy, actor, **values) -> SlaPolicy:
    policy = SlaPolicy.objects.select_for_update().get(pk=policy.pk)
    changed = {}
    for key, value in values.items():
        if key in SLA_POLICY_FIELDS and getattr(policy, key) != value:
            changed[key] = str(value)
            setattr(policy, key, value)
    _sla_policy_check(policy)
    _owned_check(actor, queue=policy.queue)
    policy.save()
    _audit(actor, "sla.updated", f"sla policy {policy.pk} {policy.name}", {"policy_id": policy.pk,
                                                                            "changed": changed})
    return policy


@transaction.atomic
def sla_policy_delete(*, policy: SlaPolicy, actor) -> None:
    _audit(actor, "sla.deleted", f"sla policy {policy.pk} {policy.name}", {"policy_id": policy.pk})
    policy.delete()


@transaction.atomic
def business_hours_set(*, team: Team, actor, time_zone: str | None = None, schedule: dict | None = None,
                       holidays: list[dict] | None = None) -> BusinessHours:
    """Creates or updates a team's hours; `holidays` ([{date, name}]) replaces the list."""
    hours, _ = BusinessHours.objects.select_for_update().get_or_create(team=team, defaults={
        "time_zone": team.time_zone or "UTC"})
    try:
        if time_zone is not None:
            cal.time_zone_check(time_zone)
            hours.time_zone = time_zone
        if schedule is not None:
            cal.schedule_parse(schedule)
            hours.schedule = schedule
    except cal.CalendarError as exc:
        raise DomainError(str(exc)) from None
    hours.save()
    if holidays is not None:
        seen = set()
        for item in holidays:
            if item["date"] in seen:
                raise DomainError(f"{item['date']} is listed twice.")
            seen.add(item["date"])
        Holiday.objects.filter(business_hours=hours).delete()
        Holiday.objects.bulk_create([Holiday(business_hours=hours, date=item["date"], name=item.get("name", ""))
                                     for item in holidays])
    _audit(actor, "business_hours.updated", f"team {team.pk} {team.name}",
           {"time_zone": hours.time_zone, "holidays": len(holidays) if holidays is not None else None})
    return hours


@transaction.atomic
def business_hours_delete(*, hours: BusinessHours, actor) -> None:
    _audit(actor, "business_hours.deleted", f"team {hours.team_id}", {"team_id": hours.team_id})
    hours.delete()


# --- queues (supervisors: the teams they lead; admins: all) -------------------------------------------

QUEUE_FIELDS = ["name", "team", "assignment_mode", "is_default"]


def _queue_team_check(actor, team: Team) -> None:
    if not can_manage_team(actor, team):
        # Not a 403: a team the actor does not lead is not theirs to name (docs/roles.md, Ownership).
        raise DomainError("You can only put queues in teams you lead.")


def _queue_default_check(queue: Queue) -> None:
    """At most one default queue per team (the database says so too: uniq_default_queue_per_team)."""
    if queue.is_default and Queue.objects.filter(team_id=queue.team_id, is_default=True).exclude(pk=queue.pk).exists():
        raise DomainError("This team has a default queue already; unset it first.")


@transaction.atomic
def queue_create(*, actor, team: Team, name: str, assignment_mode: str = Queue.AssignmentMode.MANUAL,
                 is_default: bool = False) -> Queue:
    _queue_team_check(actor, team)
    Team.objects.select_for_update().filter(pk=team.pk).first()  # one default-queue change per team at a time
    queue = Queue(name=name, team=team, assignment_mode=assignment_mode, is_default=is_default)
    _queue_default_check(queue)
    queue.save()
    _audit(actor, "queue.created", f"queue {queue.pk} {queue.name}",
           {"queue_id": queue.pk, "team_id": team.pk, "is_default": queue.is_default})
    return queue


@transaction.atomic
def queue_update(*, queue: Queue, actor, **values) -> Queue:
    queue = Queue.objects.select_for_update().get(pk=queue.pk)
    _queue_team_check(actor, queue.team)
    new_team = values.get("team", queue.team)
    if new_team.pk != queue.team_id:
        # Moving a queue moves its conversations with it: the actor must lead both teams.
        _queue_team_check(actor, new_team)
    Team.objects.select_for_update().filter(pk__in=sorted({queue.team_id, new_team.pk})).count()
    changed = {}
    for key, value in values.items():
        if key in QUEUE_FIELDS and getattr(queue, key) != value:
            changed[key] = value.pk if isinstance(value, Team) else value
            setattr(queue, key, value)
    _queue_default_check(queue)
    queue.save()
    _audit(actor, "queue.updated", f"queue {queue.pk} {queue.name}", {"queue_id": queue.pk, "changed": changed})
    return queue


@transaction.atomic
def queue_delete(*, queue: Queue, actor) -> None:
    """Refused while conversations are in the queue: deleting it would make them
    unrouted (seen by every supervisor) and drop its SLA policies silently."""
    queue = Queue.objects.select_for_update().get(pk=queue.pk)
    _queue_team_check(actor, queue.team)
    if Conversation.objects.filter(queue=queue).exists():
        raise Conflict("This queue still has conversations; move them to another queue first.")
    policies = list(SlaPolicy.objects.filter(queue=queue).values_list("pk", flat=True))
    _audit(actor, "queue.deleted", f"queue {queue.pk} {queue.name}",
           {"queue_id": queue.pk, "team_id": queue.team_id, "sla_policies_deleted": policies})
    queue.delete()
