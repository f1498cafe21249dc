from django.db import models

from apps.core.models import TimeStampedModel


class Customer(TimeStampedModel):
    """One person across channels; identities link their social accounts."""

    class Tier(models.TextChoices):
        STANDARD = "standard", "Standard"
        VIP = "vip", "VIP"

    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.STANDARD)
    tags = models.JSONField(default=list, blank=True)
    notes = models.TextField(blank=True)

    def __str__(self):
        return self.name or f"Customer {self.pk}"


class SocialIdentity(TimeStampedModel):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    provider = models.CharField(max_length=32)
    external_id = models.CharField(max_length=128)
    handle = models.CharField(max_length=200, blank=True)
    display_name = models.CharField(max_length=200, blank=True)
    followers_count = models.PositiveIntegerField(default=0)
    profile_url = models.URLField(max_length=500, blank=True)
    avatar_url = models.URLField(max_length=500, blank=True)
    verified = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "external_id"], name="uniq_identity_per_provider")
        ]

    def __str__(self):
        return f"{self.provider}:{self.handle or self.external_id}"
