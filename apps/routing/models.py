from django.conf import settings
from django.db import models
from django.db.models.functions import Now

from apps.accounts.models import Team
# The Queue is the inbox's (apps/inbox/models.py); routing's models point at it.
from apps.inbox.models import Queue

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def default_schedule() -> dict:
    return {day: ([["09:00", "17:00"]] if day not in ("sat", "sun") else []) for day in WEEKDAYS}


class BusinessHours(models.Model):
    """A team's working week in its time zone, plus its holidays.

    `schedule`: {"mon": [["09:00", "17:00"]], ..., "sun": []}, local times;
    several intervals a day are allowed ("13:00"-"14:00" lunch left out)."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="business_hours")
    time_zone = models.CharField(max_length=64, default="UTC")
    schedule = models.JSONField(default=default_schedule)

    class Meta:
        verbose_name_plural = "business hours"

    def __str__(self):
        return f"{self.team} ({self.time_zone})"


class Holiday(models.Model):
    business_hours = models.ForeignKey(BusinessHours, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["business_hours", "date"], name="uniq_holiday_per_calendar")]

    def __str__(self):
        return f"{self.date} {self.name}".strip()


class SlaPolicy(models.Model):
    """Targets for one queue (or every queue) and one priority bucket (or all).

    The most specific active policy wins: queue+bucket, queue, bucket, global."""

    name = models.CharField(max_length=100)
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.CASCADE, related_name="sla_policies",
                              help_text="Empty: every queue")
    priority_bucket = models.PositiveSmallIntegerField(
        null=True, blank=True, choices=[(0, "Urgent"), (1, "High"), (2, "Normal"), (3, "Low")],
        help_text="Empty: every priority")
    first_response_minutes = models.PositiveIntegerField(null=True, blank=True)
    next_response_minutes = models.PositiveIntegerField(null=True, blank=True)
    resolution_minutes = models.PositiveIntegerField(null=True, blank=True)
    business_hours_only = models.BooleanField(
        default=False, help_text="Count only the queue team's business hours (in its time zone)")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["queue__name", "priority_bucket", "id"]
        verbose_name_plural = "SLA policies"
        constraints = [
            models.UniqueConstraint(fields=["queue", "priority_bucket"], condition=models.Q(is_active=True),
                                    name="uniq_active_sla_per_queue_bucket"),
        ]

    def __str__(self):
        return self.name


class RoutingRule(models.Model):
    """Conditions -> actions, applied in `position` order when a conversation is
    routed at the start of a cycle (new or reopened). Empty conditions match all."""

    class Hours(models.TextChoices):
        ANY = "any", "Any time"
        INSIDE = "inside", "Inside business hours"
        OUTSIDE = "outside", "Outside business hours"

    class Visibility(models.TextChoices):
        ANY = "any", "Public or private"
        PUBLIC = "public", "Public only"
        PRIVATE = "private", "Private (direct messages) only"

    class Disposition(models.TextChoices):
        NONE = "", "None"
        SPAM = "spam", "Mark as spam (closed)"
        IGNORE = "ignore", "Ignore (closed, no reply needed)"

    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=100, db_index=True, help_text="Lower runs first")
    is_active = models.BooleanField(default=True)

    # --- conditions (all must hold; an empty one holds) ---
    channels = models.JSONField(default=list, blank=True, help_text='Providers, e.g. ["twitter"]')
    channel_accounts = models.ManyToManyField("connectors.ChannelAccount", blank=True, related_name="+")
    keywords = models.JSONField(default=list, blank=True, help_text="Any of these words or phrases (case-insensitive)")
    regex = models.CharField(max_length=500, blank=True, help_text="Python regular expression on the message text")
    languages = models.JSONField(default=list, blank=True, help_text='ISO 639-1 codes, e.g. ["en", "es"]')
    sentiments = models.JSONField(default=list, blank=True,
                                  help_text="Any of positive, neutral, negative, not_scored")
    min_followers = models.PositiveIntegerField(null=True, blank=True)
    max_followers = models.PositiveIntegerField(null=True, blank=True)
    customer_tags = models.JSONField(default=list, blank=True, help_text="The customer has any of these tags")
    customer_tiers = models.JSONField(default=list, blank=True, help_text='e.g. ["vip"]')
    hours = models.CharField(max_length=8, choices=Hours.choices, default=Hours.ANY)
    hours_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   help_text="Whose business hours; empty: the queue's team")
    visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.ANY)

    # --- actions ---
    set_queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    set_priority_bucket = models.PositiveSmallIntegerField(
        null=True, blank=True, choices=[(0, "Urgent"), (1, "High"), (2, "Normal"), (3, "Low")])
    priority_boost = models.SmallIntegerField(default=0, help_text="Points added to the priority score (-50..50)")
    add_tags = models.JSONField(default=list, blank=True)
    assign_agent = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    assign_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                    help_text="Least-loaded online agent of this team")
    auto_reply = models.ForeignKey("inbox.CannedResponse", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    disposition = models.CharField(max_length=8, choices=Disposition.choices, default=Disposition.NONE, blank=True)
    stop = models.BooleanField(default=False, help_text="Do not run later rules")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.name


class ConversationRouting(models.Model):
    """Routing's own state per conversation: the score inputs (so aging can
    rescore without reading messages) and the cycle the rules last ran for."""

    # No database constraint: written only by routing under its conversation's row lock (the
    # check at commit cost ~0.06 ms a new conversation: docs/performance-history.md item 24).
    conversation = models.OneToOneField("inbox.Conversation", on_delete=models.CASCADE, primary_key=True,
                                        related_name="routing", db_constraint=False)
    inputs = models.JSONField(default=dict)
    reasons = models.JSONField(default=list)
    rules_cycle_at = models.DateTimeField(null=True, blank=True)
    # The oldest customer message no human has answered yet (None: nobody waits).
    waiting_since = models.DateTimeField(null=True, blank=True)
    # The bucket routing last set: a different bucket on the conversation means a
    # person chose it, and aging leaves it alone.
    bucket_set = models.PositiveSmallIntegerField(null=True, blank=True)
    sla_policy = models.ForeignKey(SlaPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Targets already recorded as breached in this cycle (never raised twice).
    breached_targets = models.JSONField(default=list, blank=True)
    # The earliest pending target not yet breached: the breach check's index.
    sla_next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)


class QueueMemberState(models.Model):
    """When round robin last gave this agent a conversation from this queue."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    last_assigned_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["queue", "agent"], name="uniq_queue_member_state")]


class UnroutedMessage(models.Model):
    """A customer message stored and not routed yet. Ingest adds the row in the
    message's own transaction; routing deletes it in its transaction, under the
    conversation's lock (DELETE ... RETURNING: a message is routed once, by the
    router that deleted its row); the unrouted sweep reads what is left. The
    marker lives here, not on the message: ingest scores language and sentiment
    before the message INSERT, so routing never rewrites a message row (that
    UPDATE went through every index of the table, full-text GIN included:
    docs/performance-history.md item 20). A few rows at any time: the in-flight ones."""

    # No database constraint: the row is added in its message's own transaction and deleted by
    # routing; the check at commit cost ~0.06 ms a message (docs/performance-history.md item 24).
    message = models.OneToOneField("inbox.Message", on_delete=models.CASCADE, primary_key=True, related_name="+",
                                   db_constraint=False)
    # When the message reached us (the webhook accepted it, the poll fetched it: not its post time on
    # the network) and the request that brought it: routing takes both with the marker and records
    # the arrival -> routed latency (routing/routed_latency.py) and logs the request ids it routed.
    arrived_at = models.DateTimeField(db_default=Now())
    request_id = models.CharField(max_length=64, blank=True, db_default="")
