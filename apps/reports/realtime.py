"""Pushes spike alerts to the report pages of supervisors and marketing
(websocket group `reports.alerts`). Best effort: the pages also list alerts."""
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)
ALERTS_GROUP = "reports.alerts"


def alert_push(alert) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(ALERTS_GROUP, {
            "type": "reports.alert", "kind": alert.kind, "id": alert.pk, "channel": alert.channel,
            "message": alert.message, "bucket": alert.bucket.isoformat(),
        })
    except Exception:  # noqa: BLE001 - realtime is best-effort
        log.warning("alert push failed for %s", alert.pk, exc_info=True)
