"""Reads for the reports. They read rollups and facts only, never messages.

Time zones: rollups are kept per UTC quarter hour, hour and day. A report with at most one
filter reads the slices (MetricSlice: its range's whole ISO weeks from week rows, the
rest and the per-day series from day rows; a filter's own slices under ?team= etc.); in
a zone other than UTC each local day is its nearest UTC day plus or minus the hours
between the two midnights, read from the hour slices (SlicePlan), and the marketing
series by channel and account are the channel-and-account hour slices summed per local
day. Two filters or more regroup the full rows. Exact local days in every zone: where a
local midnight is not a whole UTC hour (India, Nepal, Newfoundland, South Australia) the
hour it splits is read as its quarter hours.

This module is the reports' entry: each report lives in a module of its own
(service_report.py, experience_report.py, marketing_report.py, gap_report.py) over the
shared reader (slice_reader.py) and the parameters (params.py)."""
from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Count, Exists, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.inbox.models import Conversation, Message

from .experience_report import customers_at_risk, experience_report, sentiment_shift
from .gap_report import gap_report
from .marketing_report import marketing_report
from .models import MetricEvent, RollupLock, SpikeAlert, WorkSession
from .params import ReportParams
from .service_report import service_report

REPORTS = {"service": service_report, "experience": experience_report, "marketing": marketing_report,
           "gap": gap_report}


def report_build(*, name: str, params: ReportParams) -> dict:
    return REPORTS[name](params=params)


def alerts_for_user(*, user, lo: dt.datetime | None = None, hi: dt.datetime | None = None,
                    now: dt.datetime | None = None, limit: int = 10) -> list[SpikeAlert]:
    """The spike alerts a report page shows its reader: not acknowledged (by a lead, for
    everyone) nor dismissed by this reader, raised in the last REPORTS_ALERTS_RECENT_HOURS
    (72) and, on a report, inside the period it shows. Older ones stay in the marketing
    report's alert history, not on every page."""
    now = now or timezone.now()
    since = now - dt.timedelta(hours=getattr(settings, "REPORTS_ALERTS_RECENT_HOURS", 72))
    qs = SpikeAlert.objects.filter(acknowledged_at__isnull=True, bucket__gte=max(since, lo) if lo else since)
    if hi is not None:
        qs = qs.filter(bucket__lt=hi)
    if user.is_authenticated:
        qs = qs.exclude(dismissals__user=user)
    return list(qs[:limit])


def handle_time_in_progress(params: ReportParams) -> dict:
    """Agents' work on threads that has not become handle time yet: a work session counts
    when it ends (5 min without activity, closed by the next apply), so right after minutes
    of work the handle-time figures are still empty. The open sessions last active in the
    period, with the report's filters: {"sessions": n, "seconds": active seconds so far}."""
    lo, hi = params.utc_range
    qs = WorkSession.objects.filter(ended_at__isnull=True, active_seconds__gt=0, last_active_at__gte=lo,
                                    last_active_at__lt=hi)
    if params.agent_id:
        qs = qs.filter(agent_id=params.agent_id)
    where = {}
    if params.channel:
        where["channel_account__provider"] = params.channel
    if params.account_id:
        where["channel_account_id"] = params.account_id
    if params.queue_id:
        where["queue_id"] = params.queue_id
    if params.team_id:
        where["queue__team_id"] = params.team_id
    if where:
        qs = qs.filter(conversation_id__in=Conversation.objects.filter(**where).values("pk"))
    found = qs.aggregate(sessions=Count("pk"), seconds=Sum("active_seconds"))
    return {"sessions": found["sessions"], "seconds": found["seconds"] or 0.0}


# What pages, the API, the cache and the digest read from here (each report's own module holds the rest).
__all__ = ["REPORTS", "ReportParams", "alerts_for_user", "customers_at_risk", "experience_report", "gap_report",
           "handle_time_in_progress", "marketing_report", "report_build", "sentiment_shift", "service_report"]


def inbound_uncounted_oldest_at() -> dt.datetime | None:
    """When the oldest customer message the reports have not counted yet was stored (None: none):
    from the applier's watermark up the message table's primary key, each probed by the event's
    unique key (inbound.inbound_messages_record counts them). One statement."""
    watermark = Coalesce(Subquery(RollupLock.objects.filter(pk=1).values("message_watermark")), 0)
    return (Message.objects.filter(pk__gt=watermark, direction=Message.Direction.INBOUND)
            .filter(~Exists(MetricEvent.msg_in_of_outer_message())).order_by("pk")
            .values_list("created_at", flat=True).first())
