"""A test run leaves nothing behind (issue 18): no PostgreSQL connection to its test
database at the end (it could not be dropped), and no Redis key it created.

Redis: the keys present when the run starts are remembered; at the end, keys the run
created are deleted when they are of a kind the run makes (cache entries, channel
layer groups, Celery queues and kombu bindings, the routing pending list of a test
database). REDIS_URL should name a database of its own for tests all the same."""
import fnmatch
import os
import sys
import warnings

# Kinds of keys a test run makes (Django cache ":<version>:...", channels_redis "asgi...",
# Celery/kombu queues and bookkeeping, routing's pending list and arrival -> routed histogram of a
# test database).
RUN_KEY_PATTERNS = (":*", "asgi*", "_kombu.*", "unacked*", "celery*", "default", "ingest", "routing",
                    "outbound", "reports", "routing:pending:test_*", "routing:routed-seconds:test_*")


def _redis():
    url = os.environ.get("REDIS_URL")
    if not url:
        return None
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError:
        return None
    return client


def redis_keys_snapshot():
    client = _redis()
    return (client, set(client.scan_iter(count=1000))) if client else (None, set())


def redis_keys_created_delete(client, before: set) -> list[bytes]:
    if client is None:
        return []
    created = [k for k in client.scan_iter(count=1000) if k not in before
               and any(fnmatch.fnmatchcase(k.decode(errors="replace"), p) for p in RUN_KEY_PATTERNS)]
    for start in range(0, len(created), 500):
        client.delete(*created[start:start + 500])
    client.close()
    return created


def database_connections_left(db_name: str) -> list[tuple]:
    """Other sessions on the test database, as (pid, application_name, state, query);
    they are ended so the database can be dropped, and reported."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, application_name, state, left(query, 120) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()", [db_name])
        left = cursor.fetchall()
        for pid, *_ in left:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    return left


def database_connections_check():
    """At the end of the run, before pytest-django drops the test database."""
    from django.db import connection, connections

    if connection.vendor != "postgresql":
        return
    connections.close_all()
    left = database_connections_left(connection.settings_dict["NAME"])
    connection.close()
    if left:
        message = f"{len(left)} connection(s) to the test database were left open: {left}"
        if os.environ.get("CX_TEST_STRICT_CONNECTIONS"):
            raise AssertionError(message)
        # Printed, not only warned: pytest shows no warnings raised after the last test.
        sys.stderr.write(f"\nWARNING (tests/hygiene.py): {message}\n")
        warnings.warn(message, stacklevel=1)
