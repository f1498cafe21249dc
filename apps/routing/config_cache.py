"""Routing's configuration as the pipeline reads it: queues, rules, SLA policies and the
teams' calendars, read once and shared by every batch of a process (RoutingCache), and read
again when the configuration's version changes (any save or delete of those rows:
routing_config_changed, connected in apps.py) or after CONFIG_MAX_AGE_SECONDS. The writes
themselves are configuration.py; the pipeline that applies it is services.py."""
from __future__ import annotations

import logging
import time
import uuid

from django.db import transaction
from django.db.models import Q

from apps.accounts.models import Team
from apps.connectors.models import ChannelAccount
from apps.inbox.models import Queue

from . import calendar as cal
from .models import BusinessHours, Holiday, RoutingRule, SlaPolicy

log = logging.getLogger(__name__)


# --- calendars and policies ------------------------------------------------------------------------

def calendar_for_team(team_id: int | None) -> cal.Calendar | None:
    """The team's business hours, or None (always open) when it has none."""
    if team_id is None:
        return None
    hours = BusinessHours.objects.filter(team_id=team_id).first()
    if hours is None:
        return None
    holidays = frozenset(Holiday.objects.filter(business_hours=hours).values_list("date", flat=True))
    return cal.Calendar(time_zone=hours.time_zone, schedule=hours.schedule, holidays=holidays)


def sla_policy_for(*, queue_id: int | None, bucket: int, policies: list[SlaPolicy] | None = None) -> SlaPolicy | None:
    """Most specific active policy: queue+bucket, queue, bucket, global."""
    if policies is None:
        policies = SlaPolicy.objects.filter(is_active=True).filter(
            Q(queue_id=queue_id) | Q(queue__isnull=True)).filter(
            Q(priority_bucket=bucket) | Q(priority_bucket__isnull=True))
    candidates = [p for p in policies if p.is_active and p.queue_id in (queue_id, None)
                  and p.priority_bucket in (bucket, None)]
    best, best_rank = None, -1
    for policy in candidates:
        rank = (2 if policy.queue_id else 0) + (1 if policy.priority_bucket is not None else 0)
        if rank > best_rank:
            best, best_rank = policy, rank
    return best


CONFIG_VERSION_KEY = "routing:config-version"
# A change that skips the signals (a queryset .update(), raw SQL) shows within this long.
CONFIG_MAX_AGE_SECONDS = 30.0


class _Config:
    """What a RoutingCache reads, shared by the batches of one process while the
    configuration's version (in the cache, bumped by routing_config_changed) stays."""

    def __init__(self, version):
        self.version, self.loaded_at = version, time.monotonic()
        self.rules = self.policies = self.queues = None
        self.calendars: dict[int | None, cal.Calendar | None] = {}
        self.team_queues: dict[int, Queue | None] = {}
        self.rule_accounts: dict[int, set[int]] = {}
        self.accounts: dict[int, object] = {}


_config: _Config | None = None


def _config_version():
    from django.core.cache import cache

    try:
        version = cache.get(CONFIG_VERSION_KEY)
        if version is None:
            cache.add(CONFIG_VERSION_KEY, uuid.uuid4().hex, None)
            version = cache.get(CONFIG_VERSION_KEY)
        return version
    except Exception:  # noqa: BLE001 - cache unreachable: read the configuration every batch, as before
        log.warning("routing: configuration version unreadable; not shared between batches", exc_info=True)
        return None


def routing_config_changed(**kwargs) -> None:
    """Receiver (apps.routing.apps): a rule, queue, SLA policy, calendar, team,
    canned reply or channel account was saved or deleted. This process reads the
    configuration again at once; the others once the change commits."""
    from django.core.cache import cache

    global _config
    _config = None

    def bump():
        try:
            cache.set(CONFIG_VERSION_KEY, uuid.uuid4().hex, None)
        except Exception:  # noqa: BLE001 - the others see it within CONFIG_MAX_AGE_SECONDS
            log.warning("routing: configuration version not bumped", exc_info=True)

    transaction.on_commit(bump)


def routing_config_forget() -> None:
    """Drops this process's shared configuration (tests: each test's rows are rolled back)."""
    global _config
    _config = None


class RoutingCache:
    """Configuration read once per routing batch (rules, SLA policies, queues,
    calendars), not once per conversation, and shared by the next batches of the
    process while its version in the cache stays (reading it was ~2.5 ms of CPU a
    batch, an eighth of a one-mention push task: docs/performance-history.md item 30). An
    edit shows from the next batch on; one made without the model's signals (a
    queryset update, SQL) within CONFIG_MAX_AGE_SECONDS."""

    def __init__(self):
        global _config
        version, config = _config_version(), _config
        if (version is None or config is None or config.version != version
                or time.monotonic() - config.loaded_at > CONFIG_MAX_AGE_SECONDS):
            config = _Config(version)
            if version is not None:
                _config = config
        self._c = config

    @property
    def rules(self) -> list[RoutingRule]:
        if self._c.rules is None:
            self._c.rules = list(RoutingRule.objects.filter(is_active=True).select_related(
                "set_queue", "assign_agent", "assign_team", "auto_reply").prefetch_related("channel_accounts"))
        return self._c.rules

    def rule_accounts(self, rule: RoutingRule) -> set[int]:
        if rule.pk not in self._c.rule_accounts:
            self._c.rule_accounts[rule.pk] = {a.pk for a in rule.channel_accounts.all()}
        return self._c.rule_accounts[rule.pk]

    @property
    def policies(self) -> list[SlaPolicy]:
        if self._c.policies is None:
            self._c.policies = list(SlaPolicy.objects.filter(is_active=True))
        return self._c.policies

    @property
    def queues(self) -> dict[int, Queue]:
        if self._c.queues is None:
            self._c.queues = {q.pk: q for q in Queue.objects.all()}
        return self._c.queues

    @property
    def default_queue(self) -> Queue | None:
        defaults = sorted((q for q in self.queues.values() if q.is_default), key=lambda q: q.pk)
        return defaults[0] if defaults else None

    def channel_account(self, account_id: int):
        """The batch's accounts, read once (without the encrypted credentials:
        decrypting them for every conversation cost more than routing it)."""
        if account_id not in self._c.accounts:
            self._c.accounts[account_id] = ChannelAccount.objects.defer("credentials", "hook_secrets").get(pk=account_id)
        return self._c.accounts[account_id]

    def team_queue(self, team: Team) -> Queue | None:
        """Where a rule's "assign team" puts a conversation: the team's default queue, else its first by name."""
        if team.pk not in self._c.team_queues:
            self._c.team_queues[team.pk] = team.queues.order_by("-is_default", "name").first()
        return self._c.team_queues[team.pk]

    def calendar(self, team_id: int | None) -> cal.Calendar | None:
        if team_id not in self._c.calendars:
            self._c.calendars[team_id] = calendar_for_team(team_id)
        return self._c.calendars[team_id]
