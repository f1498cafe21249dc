import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    AGENT = "agent", "Agent"
    SUPERVISOR = "supervisor", "Supervisor"
    MARKETING = "marketing", "Marketing"
    ADMIN = "admin", "Admin"


class Presence(models.TextChoices):
    ONLINE = "online", "Online"
    AWAY = "away", "Away"
    OFFLINE = "offline", "Offline"


class User(AbstractUser):
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT, db_index=True)
    presence = models.CharField(max_length=8, choices=Presence.choices, default=Presence.OFFLINE)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # True when the agent chose away/offline: activity then does not flip them back online.
    presence_manual = models.BooleanField(default=False)
    # Max open conversations auto-assignment gives this agent.
    capacity = models.PositiveIntegerField(default=10)
    # Optional per-channel caps, e.g. {"twitter": 5, "email": 20}; a channel not listed uses `capacity`.
    channel_capacity = models.JSONField(default=dict, blank=True)
    signature = models.CharField(max_length=200, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username

    @property
    def is_admin_role(self) -> bool:
        return self.role == Role.ADMIN or self.is_superuser

    def capacity_for(self, channel: str | None = None) -> int:
        """Max open conversations on `channel` (a provider name), or overall."""
        if channel and channel in (self.channel_capacity or {}):
            return int(self.channel_capacity[channel])
        return self.capacity


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(User, related_name="teams", blank=True)
    leads = models.ManyToManyField(User, related_name="led_teams", blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class AuditEntry(models.Model):
    """Audit rows for what is not a conversation: logins, rule/SLA edits, tokens.

    Conversation changes are audited in inbox.ConversationEvent; the audit log
    page shows both."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="audit_entries")
    # Dotted verbs: "auth.login", "auth.login_failed", "token.created", "rule.updated", "sla.updated"...
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=255, blank=True)
    data = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self):
        return f"{self.action} {self.target}".strip()


def token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """A named API token. Only its SHA-256 is stored: the key is shown once, at creation."""

    PREFIX_LENGTH = 8

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=PREFIX_LENGTH, help_text="First characters of the key, to recognise it")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def generate_key() -> str:
        return secrets.token_urlsafe(32)
