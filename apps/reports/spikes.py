"""Spike alerts: an hour whose negative sentiment or volume stands out from its channel's
baseline raises one alert (pushed to supervisors' pages, mailed when set), once per hour."""
from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Role
from apps.accounts.permissions import user_has_role
from apps.core.errors import PermissionDenied

from . import metrics
from .models import AlertDismissal, Grain, MetricRollup, SpikeAlert
from .realtime import alert_push

log = logging.getLogger(__name__)


def spikes_detect(*, now: dt.datetime | None = None) -> list[SpikeAlert]:
    """Compares the latest hour's inbound volume and negative share per channel
    and account with the 24 hours before it; a jump raises one alert, pushed to
    supervisors and marketing."""
    now = now or timezone.now()
    hour = metrics.floor_hour(now)
    since = hour - dt.timedelta(hours=24)
    conf = getattr(settings, "REPORTS_SPIKE", {})
    rows = MetricRollup.objects.filter(grain=Grain.HOUR, bucket__gte=since, bucket__lte=hour,
                                       metric__in=["msg_in", "msg_in_negative", "sentiment"]).values_list(
        "bucket", "channel", "account_id", "metric", "count")
    series: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for bucket, channel, account_id, metric, count in rows:
        series[(channel, account_id)][bucket][metric] += count
    raised = []
    for (channel, account_id), by_hour in series.items():
        current = by_hour.get(hour, {})
        history = [by_hour.get(since + dt.timedelta(hours=i), {}) for i in range(24)]
        spiked, baseline = metrics.spike_check(
            current.get("msg_in", 0), [h.get("msg_in", 0) for h in history],
            factor=conf.get("volume_factor", 3.0), min_value=conf.get("min_volume", 10))
        if spiked:
            raised.append(_alert(SpikeAlert.Kind.VOLUME, channel, account_id, hour, current.get("msg_in", 0), baseline,
                                 f"{channel}: {current.get('msg_in', 0)} inbound messages this hour, "
                                 f"against {baseline:.1f} an hour over the day before"))
        jumped, share, base_share = metrics.negative_jump(
            current.get("msg_in_negative", 0), current.get("sentiment", 0),
            sum(h.get("msg_in_negative", 0) for h in history), sum(h.get("sentiment", 0) for h in history),
            points=conf.get("negative_points", 25.0), min_scored=conf.get("min_scored", 8))
        if jumped:
            raised.append(_alert(SpikeAlert.Kind.NEGATIVE, channel, account_id, hour, share, base_share,
                                 f"{channel}: {share:.0f}% negative this hour, against {base_share:.0f}% "
                                 f"over the day before"))
    return [a for a in raised if a is not None]


def _alert(kind, channel, account_id, hour, value, baseline, message) -> SpikeAlert | None:
    with transaction.atomic():
        alert, created = SpikeAlert.objects.get_or_create(
            kind=kind, channel=channel, account_id=account_id, bucket=hour,
            defaults={"value": value, "baseline": baseline, "message": message[:300]})
        if not created:
            return None
        transaction.on_commit(lambda: _alert_push(alert))
    return alert


def _alert_push(alert: SpikeAlert) -> None:
    alert_push(alert)
    _alert_mail(alert)


def _alert_mail(alert: SpikeAlert) -> None:
    from django.contrib.auth import get_user_model
    from django.core.mail import send_mail

    recipients = list(get_user_model().objects.filter(
        is_active=True, role__in=[Role.SUPERVISOR, Role.MARKETING]).exclude(email="").values_list("email", flat=True))
    if recipients:
        send_mail(f"[cxinbox] {alert.get_kind_display()}: {alert.channel}", alert.message + "\n",
                  None, recipients, fail_silently=True)


def alert_acknowledge(*, alert: SpikeAlert, user) -> str:
    """A supervisor or admin acknowledges the alert for everyone ("acknowledged": it leaves
    every report page); a marketing user dismisses it for themselves ("dismissed": reports are
    read-only for marketing, so the support team keeps seeing it). Anyone else: refused.
    Channel accounts belong to no team, so any supervisor may acknowledge any alert (it was
    mailed to all of them)."""
    if user_has_role(user, Role.SUPERVISOR, Role.ADMIN):
        with transaction.atomic():
            updated = SpikeAlert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
                acknowledged_at=timezone.now(), acknowledged_by=user)
        if updated:
            log.info("spike alert %s acknowledged by user %s", alert.pk, user.pk)
        return "acknowledged"
    if user_has_role(user, Role.MARKETING):
        AlertDismissal.objects.get_or_create(alert=alert, user=user)
        return "dismissed"
    raise PermissionDenied("Only supervisors, admins and marketing can acknowledge alerts.")
