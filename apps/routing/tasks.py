from celery import shared_task

from .services import conversation_route


@shared_task(name="routing.route_conversation", acks_late=True, ignore_result=True,
             autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def conversation_route_task(conversation_id: int, message_ids: list[int]):
    conversation_route(conversation_id=conversation_id, message_ids=message_ids)
