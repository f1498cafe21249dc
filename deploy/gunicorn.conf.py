"""The production web tier: `gunicorn -c deploy/gunicorn.conf.py cxinbox.asgi:application`
(the `web` line of Procfile.production, `make serve`; docs/operations.md, "Serving").

One ASGI tier serves the pages, the API, the webhooks and the websockets: uvicorn
workers (cxinbox.asgi_worker) under gunicorn's arbiter, which restarts a worker that
dies or stops answering its heartbeat and recycles them. daphne is one process with
none of that, so it stays a development alternative. A slow client holds a socket and
a coroutine in a worker, never the worker; the proxy in front still buffers them.

Every value can be set from the environment; the defaults are for one small box
that also runs PostgreSQL, Redis and the Celery workers."""
import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may use (taskset, cpusets)
    except AttributeError:
        return os.cpu_count() or 1


# Sizing: one worker per core, at least 2. A uvicorn worker serves many requests at
# once (each request's Django code runs in a thread of its own, PostgreSQL waits
# overlap), but its Python runs on one core at a time (the GIL): a worker per core
# uses them all; more only add memory (~130 MB each) and fight the Celery workers
# and PostgreSQL on the same cores. Two, so a recycled or restarting worker never
# leaves the site with none. WEB_CONCURRENCY overrides (a box of its own: cores + 1).
workers = _int("WEB_CONCURRENCY", max(2, _cores()))
worker_class = "cxinbox.asgi_worker.Worker"
# Open connections per worker (websockets included) before it answers 503: 200 agents'
# sockets plus their pages fit in one worker several times over.
worker_connections = _int("WEB_MAX_CONNECTIONS", 1000)

# WEB_BIND wins ("0.0.0.0:8000" in a container, "unix:/run/cxinbox/web.sock" behind a
# local proxy); else 127.0.0.1:$PORT (honcho and most platforms set PORT): only the
# proxy on this host reaches it.
bind = [os.environ.get("WEB_BIND") or f"127.0.0.1:{_int('PORT', 8000)}"]
backlog = _int("WEB_BACKLOG", 2048)

# A worker whose event loop does not come back for `timeout` seconds is killed and
# replaced (a request's Django code runs in a thread, so only a blocked loop trips it).
timeout = _int("WEB_TIMEOUT", 30)
# On restart/deploy (SIGHUP, SIGTERM): requests in flight get this long to finish;
# websockets are closed (1012) and the pages reconnect to the new workers.
graceful_timeout = _int("WEB_GRACEFUL_TIMEOUT", 30)
# Idle keep-alive between requests. Keep it above the proxy's upstream keepalive
# timeout, or the proxy reuses a connection the worker has just closed (a 502).
keepalive = _int("WEB_KEEPALIVE", 75)
# Recycle a worker after this many requests (memory growth of a long-lived process);
# the jitter keeps the workers from restarting at the same moment. A recycle cuts the
# keep-alive connections a sender was about to reuse: at 20,000 a worker recycled every
# ~3 minutes under 200 webhook deliveries/s and 138 of 60,000 went unanswered in 5 minutes
# (issue 19). 200,000 is ~30 minutes a worker even at that rate, about daily for a busy inbox.
max_requests = _int("WEB_MAX_REQUESTS", 200000)
max_requests_jitter = _int("WEB_MAX_REQUESTS_JITTER", 20000)

# The proxy's X-Forwarded-Proto is read by Django (SECURE_PROXY_SSL_HEADER); the client
# address by the app's own rule (TRUSTED_PROXY_COUNT; uvicorn's rewriting is off in the worker).

# Each request's Django code runs in a thread of its own under ASGI, so a persistent
# connection would be one per request thread, never reused (Django: "when using ASGI,
# persistent connections should be disabled"). The web tier takes connections from a
# pool per worker instead: at most workers x DB_POOL_MAX_SIZE connections.
os.environ.setdefault("DB_POOL_MAX_SIZE", "8")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxinbox.settings.production")

# gunicorn's control socket (gunicornc) defaults to one path per user, shared by every gunicorn
# of that user on the host; off unless WEB_CONTROL_SOCKET names one (signals do the same work).
control_socket = os.environ.get("WEB_CONTROL_SOCKET", "")
control_socket_disable = not control_socket

# Requests are logged by the proxy; WEB_ACCESS_LOG=- logs them here too (on stdout).
accesslog = os.environ.get("WEB_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("WEB_LOG_LEVEL", "info")


def on_starting(server):
    """/metrics with several workers (PROMETHEUS_MULTIPROC_DIR, apps/ops): the samples of
    the previous run's processes go before the new ones write theirs."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and os.path.isdir(directory):
        for entry in os.scandir(directory):
            if entry.is_file() and entry.name.endswith(".db"):
                os.unlink(entry.path)


def child_exit(server, worker):
    """A dead worker's live gauges leave the sum (prometheus-client's multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
