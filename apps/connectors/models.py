from django.core.validators import MaxValueValidator
from django.db import models

from apps.core.fields import EncryptedJSONField
from apps.core.models import TimeStampedModel
from apps.core.request_id import request_id_current


class Provider(models.TextChoices):
    TWITTER = "twitter", "Twitter / X"
    DEMO = "demo", "Demo network (simulated)"
    MASTODON = "mastodon", "Mastodon"
    BLUESKY = "bluesky", "Bluesky"
    REDDIT = "reddit", "Reddit"
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Generic API / webhook"


class SurveyKind(models.TextChoices):
    """The survey a channel account sends on its own when a conversation is resolved
    (the reports app sends it: docs/reports.md, "Surveys")."""
    NONE = "none", "No survey"
    CSAT = "csat", "CSAT (1-5)"
    CES = "ces", "Customer effort, CES (1-7)"
    NPS = "nps", "NPS (0-10)"


SURVEY_CAP_DAYS_MAX = 365


class ChannelAccount(TimeStampedModel):
    """A brand's account on one network, polled (or pushed to) for mentions."""

    provider = models.CharField(max_length=32, choices=Provider.choices)
    name = models.CharField(max_length=100)
    handle = models.CharField(max_length=200, help_text="The brand's handle on the network, e.g. @acme")
    external_user_id = models.CharField(max_length=128, blank=True)
    # Tokens and secrets, Fernet-encrypted with FIELD_ENCRYPTION_KEYS.
    credentials = EncryptedJSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    # A new top-level post from a customer joins their open conversation on this account only
    # within this many minutes of their last message there (0: never); else it starts its own.
    # A reply, a DM thread or an email thread always continues its conversation (docs/inbox.md).
    thread_window_minutes = models.PositiveIntegerField(
        default=30, help_text="Minutes within which a customer's new post joins their open conversation (0: never)")
    # The survey policy (docs/reports.md, "Surveys"): the survey sent automatically on resolve, and
    # at most one survey per customer every `survey_cap_days` days (0: no limit), whatever the channel.
    survey_auto = models.CharField(max_length=4, choices=SurveyKind.choices, default=SurveyKind.NONE,
                                   help_text="The survey sent automatically when a conversation is resolved")
    survey_cap_days = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(SURVEY_CAP_DAYS_MAX)],
        help_text="At most one survey per customer every this many days, on any channel (0: no limit)")
    # Poll state. The cursor moves only after the mentions it covers are committed.
    # Provider-specific resume point, e.g. {"since_id": ..., "next_token": ...}.
    poll_cursor = models.JSONField(default=dict, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    consecutive_errors = models.PositiveIntegerField(default=0)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    rate_limited_until = models.DateTimeField(null=True, blank=True)
    # Federated networks live on many servers: the account's Mastodon instance,
    # Bluesky PDS, or the generic channel's reply URL. Empty: the provider's setting.
    api_base_url = models.URLField(max_length=300, blank=True)
    # Push delivery (/hooks/<provider>/<account>/): inbound token and signing
    # secret, encrypted like the credentials and kept apart so they rotate alone.
    hook_secrets = EncryptedJSONField(default=dict, blank=True)
    last_push_at = models.DateTimeField(null=True, blank=True)
    last_push_error = models.TextField(blank=True)
    push_refused_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "handle"], name="uniq_account_handle")]

    def __str__(self):
        return f"{self.get_provider_display()} {self.handle}"

    @property
    def is_simulated(self) -> bool:
        """The demo network, or a demo account of another network (credentials
        {"simulated": true}, made by `manage.py demo_setup`): its posts and replies stay on
        this machine (providers/demo.py), and its customers have no page to link to."""
        if self.provider == Provider.DEMO:
            return True
        credentials = self.credentials
        return isinstance(credentials, dict) and credentials.get("simulated") is True


class PushDelivery(TimeStampedModel):
    """A verified push delivery, kept in PostgreSQL before the sender gets its 2xx:
    Redis may lose the ingest task (crash without AOF, a lost message), this row
    does not. Ingest marks it done in the transaction that stores its mentions;
    the beat sweep re-queues what stays pending (docs/operations.md)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    account = models.ForeignKey(ChannelAccount, on_delete=models.CASCADE, related_name="push_deliveries")
    # The normalized mentions (providers.base.mention_to_dict), not the raw body:
    # the signature was checked on the raw body and parsing already succeeded.
    mentions = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    # The X-Request-ID of the webhook request that stored it (the current request id when the
    # row is made): ingest names it in its log line, so a mention is followed through a batch
    # of many deliveries (docs/operations.md, "Following a mention").
    request_id = models.CharField(max_length=64, blank=True, default=request_id_current, db_default="")

    class Meta:
        indexes = [
            models.Index(fields=["status", "updated_at"], name="push_delivery_status_idx"),  # the sweep
            models.Index(fields=["account", "status"], name="push_delivery_account_idx"),  # health counts
            # A delivery task takes an account's oldest pending deliveries: in id order from the pending
            # rows alone, however many are done (or wait in a backlog): not a sort of all of them.
            models.Index(fields=["account", "id"], name="push_delivery_pending_order",
                         condition=models.Q(status="pending")),
        ]

    def __str__(self):
        return f"push delivery {self.pk} ({self.status})"
