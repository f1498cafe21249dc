"""Request slots of the ASGI web tier: at most WEB_REQUEST_SLOTS requests of a worker run
Django's code at once; the others wait, as coroutines on the event loop, for a slot.

Under ASGI each request's (sync) Django code runs in a thread of its own. Under a burst
(100 webhook deliveries a second on two cores) hundreds of such threads were runnable
at once, and the event loop's thread, which also carries every websocket and the channel
layer's receive loop, got the GIL once per few hundred 5-ms switch intervals: pushes took
20-40 s to reach the sockets and the layer dropped what overflowed its per-worker queue
(bench/live_inbox.py, docs/performance.md). Slots bound the runnable threads; the body
is read before a slot is taken (Django reads it on the loop), so a slow upload holds none.

Default: DB_POOL_MAX_SIZE (deploy/gunicorn.conf.py sets 8), the requests that can use the
database at once anyway; more would wait for a pool connection, in a thread."""
from __future__ import annotations

import asyncio
import os
import weakref

from django.core.handlers.asgi import ASGIHandler


def request_slots() -> int:
    value = os.environ.get("WEB_REQUEST_SLOTS", "").strip() or os.environ.get("DB_POOL_MAX_SIZE", "").strip()
    return max(1, int(value)) if value else 8


class SlottedASGIHandler(ASGIHandler):
    def __init__(self, slots: int | None = None):
        super().__init__()
        self.slots = slots or request_slots()
        self._semaphores: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # one per event loop

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.slots)
        return semaphore

    async def run_get_response(self, request):
        async with self._semaphore():
            return await super().run_get_response(request)
