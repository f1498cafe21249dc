"""Routing: what happens to a conversation after its messages are stored."""
from django.db import transaction

from apps.inbox.events import event_record
from apps.inbox.models import Conversation, Message
from apps.inbox.realtime import inbox_push
from apps.insights.services import message_analyze

from .models import Queue


@transaction.atomic
def conversation_route(*, conversation_id: int, message_ids: list[int]) -> Conversation:
    conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
    messages = list(Message.objects.filter(pk__in=message_ids, conversation=conversation).order_by("sent_at", "id"))
    for message in messages:
        message_analyze(message=message)
    scored = [m for m in messages if m.sentiment is not None]
    if scored:
        if conversation.first_sentiment is None:
            conversation.first_sentiment = scored[0].sentiment
        conversation.last_sentiment = scored[-1].sentiment
    if messages and not conversation.language:
        conversation.language = messages[0].language
    if conversation.queue_id is None:
        queue = Queue.objects.filter(is_default=True).first()
        if queue:
            conversation.queue = queue
            event_record(conversation=conversation, kind="routed", queue=queue.name, reason="default queue")
    conversation.save()
    transaction.on_commit(lambda: inbox_push("conversation_updated", conversation.pk))
    return conversation
