import pytest

from tests.conftest import requires_redis

QUEUES = ["default", "ingest", "routing", "outbound", "reports"]


@pytest.fixture
def celery_worker_on_redis(transactional_db):
    """A real Celery worker (celery.contrib.testing.worker) consuming every queue
    from the Redis broker, in a thread of this process, on the test database."""
    from celery.contrib.testing.worker import start_worker

    from cxinbox.celery import app

    app.control.purge()
    with start_worker(app, pool="threads", concurrency=2, queues=QUEUES, perform_ping_check=False,
                      shutdown_timeout=20) as worker:
        yield worker
    app.control.purge()


__all__ = ["requires_redis"]
