"""A small threaded JSON HTTP server with programmable faults, shared by the
network stand-ins."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


@dataclass
class Fault:
    method: str
    path_prefix: str
    status: int = 500
    body: bytes | None = None
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    # Handle the request normally, then stall before answering (the request
    # reached the network but the client sees a timeout).
    after_handling: bool = False
    remaining: int = 1


class StandInServer:
    """Subclasses define `routes`: [(method, regex-free prefix matcher fn, handler)]."""

    def __init__(self):
        self.lock = threading.RLock()
        self.faults: list[Fault] = []
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self, method):
                parsed = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with outer.lock:
                    outer.requests.append({"method": method, "path": parsed.path, "query": parse_qs(parsed.query),
                                           "body": raw, "headers": dict(self.headers)})
                    fault = outer._take_fault(method, parsed.path)
                if fault and not fault.after_handling:
                    time.sleep(fault.delay)
                    return self._send(fault.status, fault.body if fault.body is not None else
                                      json.dumps({"title": "stand-in fault", "status": fault.status}).encode(),
                                      fault.headers)
                if "application/x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
                    # praw posts forms: single values unwrapped
                    body = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(raw.decode()).items()}
                else:
                    try:
                        body = json.loads(raw) if raw else None
                    except ValueError:
                        return self._send(400, b'{"title":"Invalid Request","detail":"body is not JSON"}')
                status, payload, headers = outer.dispatch(method, parsed.path, parse_qs(parsed.query), body,
                                                          dict(self.headers))
                if fault:  # after_handling: the work is done, the answer is late
                    time.sleep(fault.delay)
                self._send(status, payload if isinstance(payload, bytes) else json.dumps(payload).encode(), headers)

            def _send(self, status, body: bytes, headers=None):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    if (self.headers.get("Connection") or "").lower() == "close":
                        # say so: a client that sees no "Connection: close" may reuse the dead socket
                        self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_DELETE(self):
                self._handle("DELETE")

            def do_PUT(self):
                self._handle("PUT")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def add_fault(self, method: str, path_prefix: str, **kwargs) -> Fault:
        fault = Fault(method=method, path_prefix=path_prefix, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and path.startswith(fault.path_prefix) and fault.remaining > 0:
                fault.remaining -= 1
                return fault
        return None

    def dispatch(self, method, path, query, body, headers):  # pragma: no cover - interface
        raise NotImplementedError
