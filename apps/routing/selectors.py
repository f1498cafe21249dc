"""Reads for routing."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.utils import timezone

from .models import UnroutedMessage


def messages_unrouted(*, older_than: dt.timedelta, limit: int = 500) -> list[tuple[int, list[int]]]:
    """Customer messages stored more than `older_than` ago that routing never took,
    as [(conversation_id, [message_ids])]: their routing task was lost (Redis down
    when it was queued, or a crash) or keeps failing. Reads UnroutedMessage (the
    in-flight messages only), oldest first."""
    rows = (UnroutedMessage.objects.filter(message__created_at__lt=timezone.now() - older_than)
            .order_by("message_id").values_list("message__conversation_id", "message_id")[:limit])
    pairs: dict[int, list[int]] = defaultdict(list)
    for conversation_id, message_id in rows:
        pairs[conversation_id].append(message_id)
    return list(pairs.items())
