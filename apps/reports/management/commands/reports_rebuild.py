"""Rebuilds every rollup and fact from the metric events (same result as the
incremental updates). Also counts inbound messages not yet turned into events."""
import time

from django.core.management.base import BaseCommand

from apps.reports import inbound, rollups
from apps.reports.models import RollupLock


class Command(BaseCommand):
    help = "Drop the report rollups and rebuild them from the metric events."

    def handle(self, *args, **options):
        started = time.monotonic()
        recorded = 0
        while True:  # catch up on inbound messages, 5000 at a time, until the watermark stops
            before = RollupLock.objects.get_or_create(pk=1)[0].message_watermark
            recorded += inbound.inbound_messages_record()
            if RollupLock.objects.get(pk=1).message_watermark == before:
                break
        applied = rollups.rollups_rebuild()
        self.stdout.write(self.style.SUCCESS(
            f"Rebuilt from {applied} metric events ({recorded} new inbound events) "
            f"in {time.monotonic() - started:.1f}s."))
