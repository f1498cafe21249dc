import pytest

from tests.conftest import requires_redis

QUEUES = ["default", "ingest", "routing", "outbound", "reports"]


@pytest.fixture
def celery_worker_on_redis(transactional_db):
    """A real Celery worker (celery.contrib.testing.worker) consuming every queue
    from the Redis broker, in a thread of this process, on the test database."""
    from celery.contrib.testing.worker import start_worker

    from cxinbox.celery import app

    from celery.signals import task_postrun
    from django.db import connections

    def close_pool_thread_connections(sender=None, **_kwargs):
        # Each pool thread has its own database connections, which outlived the
        # worker and kept the test database from being dropped at the end of the run.
        if sender is not None and not getattr(sender.request, "is_eager", False):
            connections.close_all()

    app.control.purge()
    task_postrun.connect(close_pool_thread_connections, weak=False)
    try:
        with start_worker(app, pool="threads", concurrency=2, queues=QUEUES, perform_ping_check=False,
                          shutdown_timeout=20) as worker:
            yield worker
    finally:
        task_postrun.disconnect(close_pool_thread_connections)
    app.control.purge()


__all__ = ["requires_redis"]
