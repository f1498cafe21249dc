import shutil

import pytest
from django.db import connection

from .procs import RedisServer, Worker, client_app

needs_real_services = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary"),
]


@pytest.fixture
def postgres(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("worker processes share the database: needs PostgreSQL (DATABASE_URL)")
    return connection


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(workdir=tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def workers(postgres, redis_server, tmp_path):
    """Factory: workers(concurrency=1, env={...}) -> a started Worker on our Redis."""
    started: list[Worker] = []

    def make(concurrency=1, env=None, broker_url=None, start=True):
        worker = Worker(broker_url or redis_server.url, concurrency=concurrency, env=env, log_dir=tmp_path)
        started.append(worker)
        return worker.start() if start else worker

    yield make
    for worker in started:
        worker.kill()
    connection.close()


@pytest.fixture
def broker(redis_server):
    app = client_app(redis_server.url)
    yield app
    app.close()
