from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.accounts.models import Team
from apps.connectors.models import ChannelAccount
from apps.contacts.models import Customer, SocialIdentity
from apps.core.models import TimeStampedModel


class Status(models.TextChoices):
    NEW = "new", "New"
    OPEN = "open", "Open"
    PENDING = "pending", "Pending"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


# A conversation still being worked (one definition: ingest, the inbox, routing and supervision read it).
OPEN_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING)


class Queue(models.Model):
    """Where a conversation waits, owned by a team: who may see it follows from it
    (docs/roles.md, Ownership). Routing picks it and reads its assignment settings; the
    inbox lists, counts and scopes by it, so the model sits here, below routing
    (docs/architecture.md, "Layers"). Its table kept its first name."""

    class AssignmentMode(models.TextChoices):
        MANUAL = "manual", "Manual"
        ROUND_ROBIN = "round_robin", "Round robin"
        LEAST_LOADED = "least_loaded", "Least loaded"

    name = models.CharField(max_length=100, unique=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="queues")
    assignment_mode = models.CharField(max_length=16, choices=AssignmentMode.choices, default=AssignmentMode.MANUAL)
    is_default = models.BooleanField(default=False, help_text="Where conversations go when no rule picks a queue")

    class Meta:
        db_table = "routing_queue"
        ordering = ["name"]
        constraints = [
            # One default per team: two made routing's pick depend on the name order (docs/roles.md, Ownership).
            models.UniqueConstraint(fields=["team"], condition=models.Q(is_default=True),
                                    name="uniq_default_queue_per_team"),
        ]

    def __str__(self):
        return self.name


class PriorityBucket(models.IntegerChoices):
    # Lower sorts first: the inbox orders by bucket, then SLA due time.
    URGENT = 0, "Urgent"
    HIGH = 1, "High"
    NORMAL = 2, "Normal"
    LOW = 3, "Low"


class Tag(models.Model):
    name = models.CharField(max_length=64, unique=True)

    def __str__(self):
        return self.name


class Conversation(TimeStampedModel):
    # Each index here is written by every conversation INSERT and by every UPDATE that changes an
    # indexed column (ingest's and routing's, ~2 row versions a mention): none that a composite
    # index below already leads with, none that no query reads (docs/performance-history.md item 33).
    channel_account = models.ForeignKey(ChannelAccount, on_delete=models.PROTECT, related_name="conversations")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="conversations",
                                 db_index=False)  # conv_customer_open leads with it
    identity = models.ForeignKey(SocialIdentity, on_delete=models.PROTECT, related_name="conversations")
    # The platform's thread id (Twitter conversation_id, email root Message-ID...).
    # Always looked up with the identity (threading), whose index finds a customer's few conversations.
    external_thread_id = models.CharField(max_length=255, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    # The latest customer message (its first 300 characters): what the list shows, since that is
    # what the agent acts on and what the priority and last_sentiment come from. Blank: the subject.
    latest_text = models.CharField(max_length=300, blank=True)
    is_public = models.BooleanField(default=True)
    language = models.CharField(max_length=8, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)  # conv_inbox_order leads
    priority = models.PositiveSmallIntegerField(default=50, help_text="Score 0-100")
    priority_bucket = models.PositiveSmallIntegerField(choices=PriorityBucket.choices, default=PriorityBucket.NORMAL)
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations",
                              db_index=False)  # conv_queue_status leads with it
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_conversations",
        db_index=False,  # conv_assignee_status leads with it
    )
    last_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="conversations")
    is_spam = models.BooleanField(default=False)

    # Sentiment of the first and last customer message (VADER compound).
    first_sentiment = models.FloatField(null=True, blank=True)
    last_sentiment = models.FloatField(null=True, blank=True)

    # Cycle timestamps: a cycle starts at open or reopen and ends at resolve.
    cycle_started_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    last_outbound_at = models.DateTimeField(null=True, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)

    # SLA due times; sla_due_at is the earliest pending one (the sort key).
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    next_response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    sla_due_at = models.DateTimeField(null=True, blank=True)
    sla_breached = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["status", "priority_bucket", "sla_due_at"], name="conv_inbox_order"),
            models.Index(fields=["assignee", "status"], name="conv_assignee_status"),
            models.Index(fields=["queue", "status"], name="conv_queue_status"),
            models.Index(fields=["customer", "channel_account", "status"], name="conv_customer_open"),
            # The inbox's working views, in their sort order: the first page is an index scan.
            models.Index(fields=["priority_bucket", "sla_due_at", "-last_message_at", "-id"], name="conv_open_order",
                         condition=Q(status__in=["new", "open", "pending"], is_spam=False)),
            # conv_done_order (the Resolved view's order) is PostgreSQL only: migration 0006.
            # The sidebar counts read only this (an index-only scan of the working rows).
            models.Index(fields=["queue", "assignee", "snoozed_until"], name="conv_open_counts",
                         condition=Q(status__in=["new", "open", "pending"], is_spam=False)),
        ]

    def __str__(self):
        return f"#{self.pk} {self.identity}"

    @property
    def is_open(self) -> bool:
        return self.status in (Status.NEW, Status.OPEN, Status.PENDING)


class Message(TimeStampedModel):
    class Direction(models.TextChoices):
        INBOUND = "in", "Inbound"
        OUTBOUND = "out", "Outbound"

    class Kind(models.TextChoices):
        PUBLIC = "public", "Public"
        PRIVATE = "private", "Direct message"

    class SendStatus(models.TextChoices):
        RECEIVED = "received", "Received"
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages",
                                     db_index=False)  # msg_thread_order leads with it
    channel_account = models.ForeignKey(ChannelAccount, on_delete=models.PROTECT, related_name="messages")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.PUBLIC)
    # The platform's id; empty until an outbound message is sent.
    external_id = models.CharField(max_length=255, null=True, blank=True)
    in_reply_to_external_id = models.CharField(max_length=255, blank=True)
    author_identity = models.ForeignKey(
        SocialIdentity, null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    is_bot = models.BooleanField(default=False, help_text="Auto-replies: excluded from response metrics")
    text = models.TextField()
    url = models.URLField(max_length=500, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    sent_at = models.DateTimeField(help_text="When the message was posted on the network (or queued)")
    send_status = models.CharField(max_length=10, choices=SendStatus.choices, default=SendStatus.RECEIVED)
    failure_reason = models.TextField(blank=True)
    send_attempts = models.PositiveSmallIntegerField(default=0)
    # The draft's start: a send is refused if the thread moved on after it.
    draft_started_at = models.DateTimeField(null=True, blank=True)
    # Outbound: when the next send attempt is due (a 429's reset, a retry's backoff); the
    # reply sweep leaves a reply alone until then. Null: due now.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Outbound: the composer's one-time token (made as the form renders): a double submit
    # of one draft stores one reply (unique per conversation).
    client_token = models.CharField(max_length=255, null=True, blank=True)

    # Customer messages: scored by ingest before the INSERT (insights.text_score); empty on a row
    # stored before that, which routing scores. Whether routing has run: routing.UnroutedMessage.
    sentiment = models.FloatField(null=True, blank=True)
    sentiment_label = models.CharField(max_length=12, blank=True)
    language = models.CharField(max_length=8, blank=True)

    class Meta:
        ordering = ["sent_at", "id"]
        constraints = [
            # Idempotent ingest: the same platform message is stored once per account.
            models.UniqueConstraint(
                fields=["channel_account", "external_id"],
                condition=Q(external_id__isnull=False),
                name="uniq_message_external_id",
            ),
            models.UniqueConstraint(
                fields=["conversation", "client_token"],
                condition=Q(client_token__isnull=False),
                name="uniq_message_client_token",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "sent_at"], name="msg_thread_order"),
            # Replies in flight only (a handful of rows): the reply sweep's look-up.
            models.Index(fields=["updated_at"], name="msg_send_pending",
                         condition=Q(send_status__in=["queued", "sending"])),
            # No index on sentiment/sentiment_label/language: they are written with the row at ingest,
            # and what is not routed yet is routing.UnroutedMessage, not a column here.
        ]

    def __str__(self):
        return f"{self.direction} {self.external_id or self.pk}"


class Note(TimeStampedModel):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="notes")
    text = models.TextField()
    mentions = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="mentioned_in_notes")

    class Meta:
        ordering = ["created_at"]


class ConversationEvent(models.Model):
    """The audit trail: who did what to a conversation, and why."""

    # No database constraint (db_constraint=False; Django still cascades a delete): events are
    # written only by services holding their conversation, ~2.7 per ingested mention, and
    # PostgreSQL's check of each at commit (a locked lookup of a row the same transaction wrote)
    # was a sixth of its time per mention (docs/performance-history.md item 24).
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="events",
                                     db_constraint=False)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    kind = models.CharField(max_length=40, db_index=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.kind} on #{self.conversation_id}"


class CannedResponse(TimeStampedModel):
    """A reusable reply. Team-scoped, or global when team is empty."""

    shortcut = models.SlugField(max_length=50)
    title = models.CharField(max_length=100)
    text = models.TextField(help_text="May use {{ customer.name }} and {{ agent.first_name }}")
    team = models.ForeignKey("accounts.Team", null=True, blank=True, on_delete=models.CASCADE)

    class Meta:
        ordering = ["shortcut"]
        constraints = [models.UniqueConstraint(fields=["shortcut", "team"], name="uniq_canned_shortcut")]

    def __str__(self):
        return self.shortcut


class ReadMark(models.Model):
    """When a user last read a conversation: it is unread for them when a
    customer message arrived after this."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="read_marks")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="read_marks")
    read_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "conversation"], name="uniq_read_mark")]


class Notification(models.Model):
    """Something a user must notice: a conversation assigned to them, an @mention in a note."""

    class Kind(models.TextChoices):
        ASSIGNED = "assigned", "Assigned to you"
        MENTIONED = "mentioned", "Mentioned you"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    note = models.ForeignKey(Note, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"], name="notif_user_unread")]
