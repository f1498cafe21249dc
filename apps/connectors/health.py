"""The connector-health page's fields of push delivery: "last push" written at most every
PUSH_HEALTH_WRITE_SECONDS (never a row lock in each delivery's transaction), refusals
counted with their reason, and the hook secrets rotated."""
from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from .models import ChannelAccount

log = logging.getLogger(__name__)


def push_health_touch(*, account: ChannelAccount) -> None:
    """The health page's "last push" and the clearing of a refusal's error, written at most
    once every PUSH_HEALTH_WRITE_SECONDS, after the delivery committed and in a statement of
    its own. Written in the delivery's transaction, every delivery of an account queued on
    that one row's lock through its commit (~60 deliveries/s; issue 19). The account row
    the view just read says whether a write is due; the WHERE decides among requests that
    read it at once: the first updates, the rest (blocked a moment on its lock) match nothing."""
    now = timezone.now()
    due = now - dt.timedelta(seconds=settings.PUSH_HEALTH_WRITE_SECONDS)
    if account.last_push_at is not None and account.last_push_at > due and not account.last_push_error:
        return
    ChannelAccount.objects.filter(
        Q(last_push_at__isnull=True) | Q(last_push_at__lte=due) | ~Q(last_push_error=""), pk=account.pk,
    ).update(last_push_at=now, last_push_error="")
    # the object may be the hooks handler's kept copy (selectors.push_account_get): it reads as written
    account.last_push_at, account.last_push_error = now, ""


def push_delivery_refuse(*, account: ChannelAccount, reason: str) -> None:
    """Counted and shown on the health page: a wrong secret shows up there, not only in logs."""

    ChannelAccount.objects.filter(pk=account.pk).update(
        last_push_error=reason[:500], push_refused_count=F("push_refused_count") + 1)
    account.last_push_error = reason[:500]  # so the next good delivery clears it at once, kept copy or not


def account_hook_secrets_rotate(*, account: ChannelAccount, actor=None) -> dict:
    """New inbound token and signing secret for push delivery; the old ones stop working at once."""
    import secrets

    new = {"inbound_token": secrets.token_urlsafe(32), "signing_secret": secrets.token_urlsafe(32)}
    ChannelAccount.objects.filter(pk=account.pk).update(hook_secrets=new, updated_at=timezone.now())
    account.hook_secrets = new
    log.info("hook secrets of account %s rotated by %s", account.pk, getattr(actor, "username", "system"))
    return new
