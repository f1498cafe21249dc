from celery import shared_task

from .idempotency import idempotency_keys_purge


@shared_task(name="core.idempotency_keys_purge", ignore_result=True)
def idempotency_keys_purge_task():
    """Idempotency keys past their 24 h retention are dropped."""
    idempotency_keys_purge()
