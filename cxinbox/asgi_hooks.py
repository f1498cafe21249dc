"""The webhooks' HTTP under ASGI (/hooks/...): Django's sync request path, in one thread.

Django's ASGI handler runs a chain of sync middleware in a thread, then hops back to the
event loop for the view (the innermost handler is async) and out to the thread again for
the sync view: three hand-overs per request, each waiting for the loop, which under load
is busy with every other connection. Measured on 2 cores over HTTP, push deliveries
topped out at ~100/s that way with the CPU mostly in those hand-overs (issue 19). The
webhook view is sync and short (verify, parse, hand to push_writer), so here the body is read on
the loop and the whole request, middleware and view, runs as the WSGI handler runs it, in
one call on a worker thread; the response (always a small JSON one) goes back on the loop.
Its middleware is HOOKS_MIDDLEWARE (settings: request id, metrics, security headers, the NUL
check), not the pages' sessions, CSRF, users, CSP and presence. Pages, the API and the websockets keep Django's
own ASGI handler (cxinbox/asgi.py)."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.urls import set_script_prefix

from apps.connectors.push_writer import push_writer_enable
from apps.connectors.selectors import push_account_cache_enable

# Threads for the hooks' requests, apart from Django's. A delivery's thread verifies and parses,
# then waits for the process's writer to commit it with the others (push_writer.py); it takes
# a database connection only to look up an account it has not seen in the last seconds or to
# count a refusal, so more threads than the pool has connections (DB_POOL_MAX_SIZE) is safe:
# at worst a burst of those waits for the pool.
HOOKS_THREADS = 16


class HooksHandler(ASGIHandler):
    def __init__(self, threads: int = HOOKS_THREADS):
        super(ASGIHandler, self).__init__()  # BaseHandler: a sync middleware chain, as WSGIHandler loads it
        # ... of HOOKS_MIDDLEWARE, not MIDDLEWARE (load_middleware reads settings.MIDDLEWARE; swapped
        # for the call, once, as the process starts)
        everything = settings.MIDDLEWARE
        settings.MIDDLEWARE = [m for m in everything if m in settings.HOOKS_MIDDLEWARE]
        try:
            self.load_middleware(is_async=False)
        finally:
            settings.MIDDLEWARE = everything
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hooks")
        # deliveries stored by one thread a batch at a time, accounts kept a few seconds (issue 19)
        push_writer_enable()
        push_account_cache_enable(settings.PUSH_ACCOUNT_CACHE_SECONDS)

    async def handle(self, scope, receive, send):
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            response = await asyncio.get_running_loop().run_in_executor(self.executor, self._respond, scope,
                                                                        body_file)
            await self.send_response(response, send)
        finally:
            body_file.close()

    def _respond(self, scope, body_file):
        """What WSGIHandler.__call__ does, in this worker thread: the request's signals too,
        so its database connection goes back to the pool here, in the thread that used it."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        response = error_response if request is None else self.get_response(request)
        response._handler_class = self.__class__
        if not response.streaming and not response.has_header("Content-Length"):
            # as CommonMiddleware does for the pages: senders reuse the connection knowing where the body ends
            response.headers["Content-Length"] = str(len(response.content))
        response.close()  # request_finished: close_old_connections in this thread
        return response


def hooks_path(scope) -> bool:
    return scope["type"] == "http" and scope.get("path", "").startswith("/hooks/")


def http_router(hooks_app, default_app):
    """/hooks/ to the hooks' handler, every other HTTP request to Django's ASGI handler."""

    async def app(scope, receive, send):
        if hooks_path(scope):
            await hooks_app(scope, receive, send)
        else:
            await default_app(scope, receive, send)

    return app
