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
    # Max open conversations auto-assignment gives this agent.
    capacity = models.PositiveIntegerField(default=10)
    signature = models.CharField(max_length=200, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username

    @property
    def is_admin_role(self) -> bool:
        return self.role == Role.ADMIN or self.is_superuser


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(User, related_name="teams", blank=True)
    leads = models.ManyToManyField(User, related_name="led_teams", blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name
