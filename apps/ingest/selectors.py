"""Reads of the arrival -> stored -> routed pipeline (the layers above ask them)."""
from __future__ import annotations

import datetime as dt

from django.db import connection
from django.utils import timezone

from apps.connectors.models import PushDelivery
from apps.routing.models import UnroutedMessage


def inbox_behind(*, seconds: float, now: dt.datetime | None = None,
                 within: dt.timedelta = dt.timedelta(minutes=10)) -> bool:
    """Whether mentions that arrived more than `seconds` ago still wait to be stored (a push
    delivery never tried yet) or routed (a stored message's routing marker). What has waited
    longer than `within` is stuck, not a burst: the sweeps and the alerts on /metrics are for
    that. One statement, on the small in-flight sets: the pending deliveries (their partial
    index) and the markers."""
    now = now or timezone.now()
    newest, oldest = now - dt.timedelta(seconds=seconds), now - within
    deliveries, markers = PushDelivery._meta.db_table, UnroutedMessage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            # the table names are the models' own
            f"SELECT EXISTS (SELECT 1 FROM {deliveries} WHERE status = %s AND attempts = 0 "  # noqa: S608
            f"AND created_at BETWEEN %s AND %s) "
            f"OR EXISTS (SELECT 1 FROM {markers} WHERE arrived_at BETWEEN %s AND %s)",
            [PushDelivery.Status.PENDING, oldest, newest, oldest, newest])
        return bool(cursor.fetchone()[0])
