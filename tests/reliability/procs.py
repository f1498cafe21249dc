"""Real processes for the fault tests: a private redis-server and Celery worker
subprocesses (`celery -A cxinbox worker`) that can be SIGKILLed, restarted and
pointed at the test's PostgreSQL database and stand-in networks."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from celery import Celery
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
QUEUES = "default,ingest,routing,outbound,reports"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=30.0, interval=0.1, what=""):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate.__doc__ or predicate}")
        time.sleep(interval)


class RedisServer:
    """Our own redis-server on a free port (never the shared one on 6379), so a
    test may kill and restart it."""

    def __init__(self, port: int | None = None, appendonly: bool = False, workdir: Path | None = None):
        self.port = port or free_port()
        self.appendonly = appendonly
        self.workdir = Path(workdir or "/tmp")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--dir", str(self.workdir), "--appendonly", "yes" if self.appendonly else "no"]
        if self.appendonly:
            args += ["--appendfsync", "always", "--appendfilename", f"cx-{self.port}.aof"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.ping, 10, what=f"redis on {self.port}")
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, sig=signal.SIGKILL, down_for: float = 0.5):
        self.stop(sig)
        time.sleep(down_for)
        self.start()


def database_url_for_workers() -> str:
    """The test run's own PostgreSQL database (test_<name>), for the workers."""
    s = connection.settings_dict
    user = s.get("USER") or "postgres"
    auth = f"{user}:{s['PASSWORD']}@" if s.get("PASSWORD") else f"{user}@"
    return f"postgres://{auth}{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def terminate_worker_connections() -> int:
    """pg_terminate_backend on every database connection of the workers."""
    import psycopg

    with psycopg.connect(database_url_for_workers(), autocommit=True) as c:
        rows = c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE application_name = 'cx-worker' AND pid <> pg_backend_pid()").fetchall()
    return len(rows)


def worker_connections(state: str | None = None) -> int:
    import psycopg

    with psycopg.connect(database_url_for_workers(), autocommit=True) as c:
        sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cx-worker'"
        if state == "lock":
            sql += " AND wait_event_type = 'Lock'"
        return c.execute(sql).fetchone()[0]


def children_of(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


class Worker:
    """`celery -A cxinbox worker` in its own process group, on the test database,
    the given broker and the stand-in networks."""

    _n = 0

    def __init__(self, broker_url: str, *, concurrency: int = 1, env: dict | None = None, log_dir: Path):
        Worker._n += 1
        self.name = f"w{Worker._n}-{os.getpid()}@localhost"
        self.broker_url = broker_url
        self.concurrency = concurrency
        self.log_path = Path(log_dir) / f"worker-{Worker._n}.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "cxinbox.settings.test",
            # named, so a test can find (and drop) the workers' database connections
            "DATABASE_URL": database_url_for_workers() + "?application_name=cx-worker",
            "REDIS_URL": broker_url,
            "CONN_MAX_AGE": "60",
            "TWITTER_API_BASE_URL": settings.TWITTER_API_BASE_URL,
            "PROVIDER_TIMEOUT_SECONDS": str(settings.PROVIDER_TIMEOUT_SECONDS),
            "CELERY_VISIBILITY_TIMEOUT": "4",
            "CELERY_UNACKED_RESTORE_INTERVAL": "1",
            "CELERY_UNACKED_RESTORE_THROTTLE": "1",
            "LOG_LEVEL": "INFO",
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None

    def start(self, wait=True) -> "Worker":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "cxinbox", "worker", "-Q", QUEUES, "-P", "prefork",
             "-c", str(self.concurrency), "-n", self.name, "-l", "INFO", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        if wait:
            wait_for(self.ready, 60, interval=0.3, what=f"worker {self.name} ready")
        return self

    def ready(self) -> bool:
        assert self.proc.poll() is None, f"worker exited:\n{self.log()}"
        return "ready." in self.log() and len(self.pool_pids()) >= self.concurrency

    def pool_pids(self) -> list[int]:
        return children_of(self.proc.pid) if self.proc else []

    def kill(self, sig=signal.SIGKILL):
        """The whole worker (main process and pool) at once, as the OOM killer or a lost host would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(20)

    def kill_pool_process(self) -> int:
        """Only the pool process running the task: the main process stays and notices."""
        pid = self.pool_pids()[0]
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def client_app(broker_url: str) -> Celery:
    """Sends tasks by name to a given broker, routed like the project's settings."""
    app = Celery("cxinbox-test-client", broker=broker_url, set_as_current=False)
    app.conf.update(task_routes=settings.CELERY_TASK_ROUTES, task_serializer="json",
                    broker_connection_retry_on_startup=True, broker_transport_options={"max_retries": 3})
    return app


class project_app_on:
    """Points this process's own Celery app (what services' on_commit callbacks send
    through) at a given broker for a while: a view called here queues its tasks on
    the test's private Redis, the one the test kills."""

    def __init__(self, broker_url: str):
        self.broker_url = broker_url

    @staticmethod
    def _reset(app):
        # the connection and producer pools are made once from the broker URL
        app._pool = None
        app.amqp._producer_pool = None

    def __enter__(self):
        from cxinbox.celery import app

        self.app, self.old = app, app.conf.broker_url
        app.conf.broker_url = self.broker_url
        self._reset(app)
        return app

    def __exit__(self, *exc):
        self.app.conf.broker_url = self.old
        self._reset(self.app)
