"""Reads for routing."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.utils import timezone

from apps.inbox.models import Message


def messages_unrouted(*, older_than: dt.timedelta, limit: int = 500) -> list[tuple[int, list[int]]]:
    """Customer messages stored more than `older_than` ago that routing never scored,
    as [(conversation_id, [message_ids])]: their routing task was lost (Redis down
    when it was queued, or a crash) or keeps failing. Reads the partial index msg_unrouted."""
    rows = (Message.objects.filter(direction=Message.Direction.INBOUND, sentiment_label="",
                                   created_at__lt=timezone.now() - older_than)
            .order_by("created_at").values_list("conversation_id", "id")[:limit])
    pairs: dict[int, list[int]] = defaultdict(list)
    for conversation_id, message_id in rows:
        pairs[conversation_id].append(message_id)
    return list(pairs.items())
