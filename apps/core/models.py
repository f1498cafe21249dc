from django.conf import settings
from django.db import models
from django.utils import timezone

from .fields import EncryptedJSONField


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class IdempotencyKey(models.Model):
    """One API write done under a client's `Idempotency-Key` (apps/core/idempotency.py).

    Unique per (user, key): a second request with the key waits on the first's
    uncommitted row, then replays its stored response. The response is kept
    encrypted (a token's secret can be in it) and dropped after
    IDEMPOTENCY_KEY_TTL_HOURS by the beat task core.idempotency_keys_purge."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=255)
    # sha256 of method, path and (canonical JSON) body: the same key with another request is a 422.
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response = EncryptedJSONField(default=dict, blank=True)  # {"body": text, "content_type": ...}
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="uniq_idempotency_user_key")]

    def __str__(self):
        return f"{self.user_id}:{self.key}"
