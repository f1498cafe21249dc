"""A test run leaves nothing behind: its test database can be dropped (no connection
left open: the in-process Celery worker's pool threads kept theirs) and the Redis keys
it made are gone. Runs the worker-on-Redis test in a pytest of its own, strict."""
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not DATABASE_URL.startswith(("postgres://", "postgresql://")) or not REDIS_URL,
                       reason="needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL); .ci/run sets them"),
]


def test_a_run_leaves_no_connections_and_no_redis_keys():
    import redis

    parts = urlsplit(DATABASE_URL)
    name = f"{parts.path.lstrip('/') or 'cxinbox'}_hygiene_{os.getpid()}"
    client = redis.Redis.from_url(REDIS_URL)
    before = set(client.scan_iter(count=1000))
    env = {**os.environ, "DATABASE_URL": urlunsplit(parts._replace(path=f"/{name}")),
           "CX_TEST_STRICT_CONNECTIONS": "1"}
    env.pop("PYTEST_CURRENT_TEST", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "tests/integration", "-q", "-p", "no:randomly",
                           "--create-db"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "left open" not in done.stdout + done.stderr
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres"))) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname = %s", [f"test_{name}"]).fetchall()
    assert left == [], "the run's test database could not be dropped"
    created = [k for k in client.scan_iter(count=1000) if k not in before]
    assert created == [], f"keys left in Redis: {created[:20]}"
