"""The gunicorn worker of the production web tier (deploy/gunicorn.conf.py): uvicorn
serving cxinbox.asgi, with what gunicorn's own settings do not carry over to it, and
a time limit on reading a request's headers, which uvicorn does not have."""
import os

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker

# A connection that has not sent a whole request line and headers this many seconds after
# it opened (or after its previous response) is closed. uvicorn waits forever: stalled
# sockets cost no worker, but enough of them reach worker_connections and every new
# client gets a 503 (slowloris). The proxy's own header timeout is the first line.
HEADER_TIMEOUT_SECONDS = float(os.environ.get("WEB_HEADER_TIMEOUT", "") or 20)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    _header_timer = None

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(HEADER_TIMEOUT_SECONDS, self._header_timeout)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        self.logger.debug("closing a connection that sent no whole request in %ss", HEADER_TIMEOUT_SECONDS)
        self.transport.close()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:  # each request of a keep-alive connection
        self._arm()
        super().on_message_begin()

    def on_headers_complete(self) -> None:  # the body and the app are not timed here
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)


class Worker(UvicornWorker):
    CONFIG_KWARGS = {
        "loop": "uvloop",
        "http": HeaderTimeoutProtocol,
        "ws": "websockets-sansio",
        # The client address is decided once, by the app (TRUSTED_PROXY_COUNT on
        # X-Forwarded-For, apps.accounts.lockout), not also by uvicorn with a rule of its own.
        "proxy_headers": False,
        # The pages send small JSON control frames; apps.core.sockets answers frames past
        # its limit with an error frame. Far bigger ones are cut off here (close 1009).
        "ws_max_size": 64 * 1024,
        "server_header": False,
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # gunicorn's worker_connections: open connections (sockets included) per worker; 503 beyond
        self.config.limit_concurrency = self.cfg.worker_connections
        # requests in flight finish (websockets are closed) before gunicorn's graceful
        # timeout runs out and it kills the worker
        self.config.timeout_graceful_shutdown = max(1, int(self.cfg.graceful_timeout) - 2)
