"""Reports: metric events (the facts), rollups (what reports read), surveys, alerts.

Dimensions are stored as plain ids (0 = none) rather than foreign keys: a
rollup row must not vanish or change when a queue or user is deleted, and
NULLs would defeat the unique keys the incremental upserts rely on."""
import uuid

from django.conf import settings
from django.db import models
from django.db.models import CharField, F, OuterRef, Q, Value
from django.db.models.functions import Cast, Concat

from apps.inbox.models import Conversation


class MetricEvent(models.Model):
    """One measurable change, written by the services in the same transaction
    as the change. Rollups are a pure function of these rows."""

    key = models.CharField(max_length=120, unique=True, help_text="Dedupe key: one event per fact, ever")
    kind = models.CharField(max_length=32, db_index=True)
    occurred_at = models.DateTimeField(db_index=True)
    conversation_id = models.BigIntegerField(default=0, db_index=True)
    cycle = models.PositiveIntegerField(default=0)
    channel = models.CharField(max_length=32, blank=True)
    account_id = models.BigIntegerField(default=0)
    queue_id = models.BigIntegerField(default=0)
    team_id = models.BigIntegerField(default=0)
    agent_id = models.BigIntegerField(default=0)
    customer_id = models.BigIntegerField(default=0, db_index=True)
    value = models.FloatField(null=True, blank=True)
    # The same duration counted in business hours only (first response, reply, resolution).
    value_bh = models.FloatField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    rolled_up = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["id"], condition=Q(rolled_up=False), name="metric_pending"),
            models.Index(fields=["customer_id", "kind", "occurred_at"], name="metric_customer_kind"),
        ]

    def __str__(self):
        return f"{self.kind} #{self.conversation_id} @ {self.occurred_at:%Y-%m-%d %H:%M}"

    @classmethod
    def msg_in_of_outer_message(cls):
        """The msg_in event of the outer query's message (for Exists): its key is f"in:{message.pk}"."""
        return cls.objects.filter(key=Concat(Value("in:"), Cast(OuterRef("pk"), CharField())))


class ConversationMetricState(models.Model):
    """Where each conversation's current cycle stands, so each fact is counted
    once per cycle (first response, resolution, SLA outcome)."""

    conversation = models.OneToOneField(Conversation, primary_key=True, on_delete=models.CASCADE, related_name="+")
    cycle = models.PositiveIntegerField(default=1)
    cycle_started_at = models.DateTimeField()
    cycle_counted = models.BooleanField(default=False, help_text="opened/reopened metric written for this cycle")
    first_response_done = models.BooleanField(default=False)
    resolved = models.BooleanField(default=False)
    # Spam or ignored: 1 = dismissed after it was counted (a "dismissed" event
    # took it out), 2 = dismissed before it was ever counted (no events at all).
    dismissed = models.PositiveSmallIntegerField(default=0)
    sla_decided = models.JSONField(default=list, blank=True)


class WorkSession(models.Model):
    """One agent's active time on one conversation (handle time), from the
    inbox's presence signals: opening the thread, typing, input heartbeats,
    leaving. Gaps longer than the idle limit are not counted; leaving and
    coming back within it continues the session without counting the time away.
    A closed session becomes one "handle" metric event."""

    conversation_id = models.BigIntegerField()
    agent_id = models.BigIntegerField()
    started_at = models.DateTimeField()
    last_active_at = models.DateTimeField()
    active_seconds = models.FloatField(default=0.0)
    away = models.BooleanField(default=False, help_text="left the thread; the time until a return is not counted")
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent_id", "conversation_id"], condition=Q(ended_at__isnull=True),
                                    name="uniq_open_work_session"),
        ]
        indexes = [models.Index(fields=["last_active_at"], condition=Q(ended_at__isnull=True),
                                name="work_session_open")]

    def __str__(self):
        return f"agent {self.agent_id} on #{self.conversation_id}: {self.active_seconds:.0f}s"


class Grain(models.TextChoices):
    HOUR = "h", "Hour"
    DAY = "d", "Day"
    # UTC quarter hour: read only where a local midnight falls inside an hour (a zone whose
    # offset is not whole hours: India, Nepal, Newfoundland, South Australia): see docs/reports.md
    QUARTER = "q", "Quarter hour"


class MetricRollup(models.Model):
    """Counts, sums and (for durations and scores) the sorted values of one
    metric in one UTC hour or day, per channel x account x queue x team x agent."""

    grain = models.CharField(max_length=1, choices=Grain.choices)
    bucket = models.DateTimeField()
    metric = models.CharField(max_length=32)
    channel = models.CharField(max_length=32, blank=True)
    account_id = models.BigIntegerField(default=0)
    queue_id = models.BigIntegerField(default=0)
    team_id = models.BigIntegerField(default=0)
    agent_id = models.BigIntegerField(default=0)
    count = models.IntegerField(default=0)
    total = models.FloatField(default=0.0)
    values = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["grain", "bucket", "metric", "channel", "account_id", "queue_id", "team_id", "agent_id"],
                name="uniq_metric_rollup",
            )
        ]
        indexes = [
            models.Index(fields=["grain", "metric", "bucket"], name="rollup_metric_bucket"),
            # An agent's rows (?agent=: agents have no hour slices, and an agent's rows are few): a
            # report read them through the index above and dropped every other agent's, 59 of 60
            # rows on the bench set (marketing, 90 days: ~0.6 s)
            models.Index(fields=["agent_id", "grain", "metric", "bucket"], name="rollup_agent_metric_bucket"),
        ]


class SliceGrain(models.TextChoices):
    DAY = "d", "Day"
    WEEK = "w", "Week"  # ISO week: Monday 00:00 UTC to the next
    # UTC hour, the total only (dim ''), unfiltered and per channel, account, queue and team
    # value: the hours a local day takes from or gives to its UTC day (metrics.HOUR_SLICE_FILTERS);
    # and for the sentiment counts per channel and account as well (dim metrics.CHANNEL_ACCOUNT)
    HOUR = "h", "Hour"
    # UTC quarter hour: the same rows as the hour slices, for the hours a local midnight splits
    QUARTER = "q", "Quarter hour"


class MetricSlice(models.Model):
    """The day rollups pre-aggregated along one dimension at a time (all, channel,
    account, queue, team, agent): what an unfiltered report reads, so a 30-day
    report sums a few thousand rows, not every channel x account x queue x team x
    agent combination. The same again per ISO week (UTC, from Monday): a long range
    reads its whole weeks and the days at its ends. Filter slices (fdim, fkey) are the
    same restricted to one value of one dimension. Durations keep a histogram
    (5% wide log bins, see metrics.hist_bin) for medians and p90 over any range,
    and their exact values while a row has at most metrics.EXACT_MAX of them."""

    # db_default: rows inserted by SQL that predates weeks (migration 0007, the bench) are days
    grain = models.CharField(max_length=1, choices=SliceGrain.choices, default=SliceGrain.DAY,
                             db_default=SliceGrain.DAY)
    bucket = models.DateTimeField(help_text="UTC day, or the Monday of a UTC week")
    metric = models.CharField(max_length=32)
    # A filter slice (a report with ?team=, ?queue=...): the same figures restricted to one
    # value of one dimension. '' = no filter. Filter slices are kept per week for every other
    # dimension, and per day for '' only (the per-day series and the backlog): see SLICE_FILTERS.
    fdim = models.CharField(max_length=8, blank=True, default="", db_default="",
                            help_text="'' (no filter), channel, account, queue, team, agent")
    fkey = models.CharField(max_length=32, blank=True, default="", db_default="")
    dim = models.CharField(max_length=8, blank=True, help_text="'' (all), channel, account, queue, team, agent")
    # 64: a channel-and-account hour slice's key is "<channel>|<account id>" (metrics.CHANNEL_ACCOUNT)
    key = models.CharField(max_length=64, blank=True)
    count = models.IntegerField(default=0)
    total = models.FloatField(default=0.0)
    values = models.JSONField(default=list, blank=True)
    hist = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            # the filter, then metric before bucket: a range of buckets for a few metrics of one
            # filter (or none) is one index range per metric
            models.UniqueConstraint(fields=["grain", "fdim", "fkey", "metric", "bucket", "dim", "key"],
                                    name="uniq_metric_slice_filter")
        ]
        indexes = [models.Index(fields=["grain", "fdim", "fkey", "dim", "metric", "bucket"],
                                name="slice_filter_dim_metric_bucket")]


class TermRollup(models.Model):
    """Inbound volume and sentiment per UTC hour and UTC day by topic, hashtag or
    keyword, with the most positive and most negative example posts (masked)."""

    grain = models.CharField(max_length=1, choices=Grain.choices, default=Grain.HOUR)
    bucket = models.DateTimeField()
    channel = models.CharField(max_length=32, blank=True)
    account_id = models.BigIntegerField(default=0)
    term_type = models.CharField(max_length=8)  # topic | hashtag | keyword
    term = models.CharField(max_length=64)
    count = models.IntegerField(default=0)
    positive = models.IntegerField(default=0)
    negative = models.IntegerField(default=0)
    neutral = models.IntegerField(default=0)
    total = models.FloatField(default=0.0)
    examples = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["grain", "bucket", "channel", "account_id", "term_type", "term"],
                                    name="uniq_term_rollup_grain")
        ]
        indexes = [models.Index(fields=["grain", "term_type", "bucket"], name="term_grain_type_bucket")]


# A report's filter columns on the facts (slice_reader.conversation_facts): carried by the shift indexes.
SHIFT_FILTER_COLUMNS = ["channel", "account_id", "queue_id", "team_id", "agent_id"]


class ConversationFact(models.Model):
    """One row per conversation, folded from its metric events: the gap report,
    sentiment shift and experience lists read this, never messages."""

    conversation_id = models.BigIntegerField(primary_key=True)
    channel = models.CharField(max_length=32, blank=True)
    account_id = models.BigIntegerField(default=0)
    queue_id = models.BigIntegerField(default=0)
    team_id = models.BigIntegerField(default=0)
    agent_id = models.BigIntegerField(default=0)
    customer_id = models.BigIntegerField(default=0)
    # Where it was last resolved (queue, team, agent): the newest resolution wins.
    dims_key = models.CharField(max_length=40, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    last_resolved_at = models.DateTimeField(null=True, blank=True, db_index=True)
    resolutions = models.IntegerField(default=0)
    reopens = models.IntegerField(default=0)
    first_response_seconds = models.FloatField(null=True, blank=True)
    first_response_cycle = models.IntegerField(default=0)
    sla_met = models.IntegerField(default=0)
    sla_breached = models.IntegerField(default=0)
    inbound = models.IntegerField(default=0)
    first_sentiment = models.FloatField(null=True, blank=True)
    first_sentiment_key = models.CharField(max_length=40, blank=True)
    last_sentiment = models.FloatField(null=True, blank=True)
    last_sentiment_key = models.CharField(max_length=40, blank=True)
    csat = models.IntegerField(null=True, blank=True)
    csat_key = models.CharField(max_length=40, blank=True)
    tags = models.JSONField(default=list, blank=True)
    topics = models.JSONField(default=list, blank=True)

    class Meta:
        # Sentiment shift (selectors.sentiment_shift) over the scored facts of a range: its
        # counts as an index-only scan, its two lists (the largest shifts either way) read in
        # shift order from either end of one index instead of sorting every fact of the range.
        # Both carry what the filters test, so neither visits the table for a fact it skips.
        indexes = [
            models.Index(fields=["last_resolved_at"], name="fact_scored_resolved",
                         include=["first_sentiment", "last_sentiment", *SHIFT_FILTER_COLUMNS],
                         condition=Q(first_sentiment__isnull=False, last_sentiment__isnull=False)),
            models.Index(F("last_sentiment") - F("first_sentiment"), F("conversation_id"), name="fact_shift",
                         include=["last_resolved_at", "first_sentiment", "last_sentiment", "inbound",
                                  *SHIFT_FILTER_COLUMNS],
                         condition=Q(first_sentiment__isnull=False, last_sentiment__isnull=False)),
        ]


class CustomerFact(models.Model):
    """Per customer: recent sentiment and churn words, for "customers at risk"."""

    customer_id = models.BigIntegerField(primary_key=True)
    inbound = models.IntegerField(default=0)
    # [[sort key, compound], ...] of the last scored messages, oldest first.
    recent = models.JSONField(default=list, blank=True)
    churn_hits = models.IntegerField(default=0)
    churn_words = models.JSONField(default=list, blank=True)
    last_contact_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_conversation_id = models.BigIntegerField(default=0)
    channel = models.CharField(max_length=32, blank=True)


def new_cache_epoch() -> str:
    return uuid.uuid4().hex


class RollupLock(models.Model):
    """A single row locked while rollups are applied: one applier at a time."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    applied_total = models.BigIntegerField(default=0)
    # Inbound messages up to this id have their msg_in event (see inbound.inbound_messages_record).
    message_watermark = models.BigIntegerField(default=0)
    last_run_at = models.DateTimeField(null=True, blank=True)
    # Part of the report cache's key (apps/reports/cache.py): renewed by a rebuild, so
    # a rebuilt or restored database never meets report entries cached before.
    cache_epoch = models.CharField(max_length=32, default=new_cache_epoch)


class Survey(models.Model):
    class Kind(models.TextChoices):
        CSAT = "csat", "CSAT (1-5)"
        CES = "ces", "Customer effort (1-7)"
        NPS = "nps", "NPS (0-10)"

    SCALES = {"csat": (1, 5), "ces": (1, 7), "nps": (0, 10)}

    kind = models.CharField(max_length=4, choices=Kind.choices, default=Kind.CSAT)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="surveys")
    token = models.CharField(max_length=64, unique=True)
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    message_id = models.BigIntegerField(null=True, blank=True)
    sent_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    score = models.SmallIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-sent_at"]

    def __str__(self):
        return f"{self.kind} for #{self.conversation_id}"

    @property
    def scale(self) -> tuple[int, int]:
        return self.SCALES[self.kind]


class SpikeAlert(models.Model):
    class Kind(models.TextChoices):
        VOLUME = "volume", "Volume spike"
        NEGATIVE = "negative", "Negative share jump"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    channel = models.CharField(max_length=32, blank=True)
    account_id = models.BigIntegerField(default=0)
    bucket = models.DateTimeField(help_text="The UTC hour that spiked")
    value = models.FloatField()
    baseline = models.FloatField()
    message = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)
    # Acknowledged by a supervisor or admin: off every report page, for everyone (spikes.alert_acknowledge).
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")

    class Meta:
        ordering = ["-bucket", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "channel", "account_id", "bucket"], name="uniq_spike_alert")
        ]

    def __str__(self):
        return self.message


class AlertDismissal(models.Model):
    """A marketing user's "seen it" on a spike alert: off their own pages only (reports are
    read-only for marketing, so the support team still sees the alert until a lead acknowledges it)."""

    alert = models.ForeignKey(SpikeAlert, on_delete=models.CASCADE, related_name="dismissals")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    dismissed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["alert", "user"], name="uniq_alert_dismissal")]

    def __str__(self):
        return f"alert {self.alert_id} dismissed by {self.user_id}"
