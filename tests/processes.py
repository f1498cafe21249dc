"""What the tests that start the product as a deployment does share: a PostgreSQL database of
their own next to the run's, and stopping a process group (honcho and what it started)."""
import contextlib
import os
import signal
import subprocess
from urllib.parse import urlsplit, urlunsplit


def process_group_stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to the group, then SIGKILL if it has not stopped within `timeout`."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def scratch_database(database_url: str, suffix: str):
    """A fresh database named after the run's plus `suffix`; its URL, dropped (connections and all) after."""
    import psycopg

    parts = urlsplit(database_url)
    name = f"{parts.path.lstrip('/') or 'cxinbox'}_{suffix}_{os.getpid()}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
