"""Reads for the reports. They read rollups and facts only, never messages.

Time zones: rollups are kept per UTC hour and per UTC day. A report with at most one
filter reads the slices (MetricSlice: its range's whole ISO weeks from week rows, the
rest and the per-day series from day rows; a filter's own slices under ?team= etc.); in
a zone other than UTC each local day is its nearest UTC day plus or minus the hours
between the two midnights, read from the hour slices (SlicePlan), and the marketing
series by channel and account are the channel-and-account hour slices summed per local
day. Two filters or more regroup the full rows. Exact for every zone whose offset is a
whole number of hours; in the few half-hour zones an hour is given to the local day it
starts in.

This module is the reports' entry: each report lives in a module of its own
(service_report.py, experience_report.py, marketing_report.py, gap_report.py) over the
shared reader (slice_reader.py) and the parameters (params.py)."""
from __future__ import annotations

from .experience_report import customers_at_risk, experience_report, sentiment_shift
from .gap_report import gap_report
from .marketing_report import marketing_report
from .models import SpikeAlert
from .params import ReportParams
from .service_report import service_report

REPORTS = {"service": service_report, "experience": experience_report, "marketing": marketing_report,
           "gap": gap_report}


def report_build(*, name: str, params: ReportParams) -> dict:
    return REPORTS[name](params=params)


def alerts_recent(limit: int = 10):
    return list(SpikeAlert.objects.filter(acknowledged_at__isnull=True)[:limit])


# What pages, the API, the cache and the digest read from here (each report's own module holds the rest).
__all__ = ["REPORTS", "ReportParams", "alerts_recent", "customers_at_risk", "experience_report", "gap_report",
           "marketing_report", "report_build", "sentiment_shift", "service_report"]
