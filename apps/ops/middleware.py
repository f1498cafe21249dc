"""Times every response of the web tier for /metrics (apps/ops/metrics.py): status
classes for a 5xx rate, and the accept latency of push deliveries (/hooks/). Second in
MIDDLEWARE (after the request id, which costs microseconds), so the whole stack is inside the time. Sync and async capable: it follows
the stack below it (sync-only today, so under ASGI Django runs it in that stack's thread)."""
import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from .metrics import request_observe


class RequestMetricsMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        started = time.perf_counter()
        response = self.get_response(request)  # an exception is already a 500 response here
        request_observe(path=request.path_info, status=response.status_code, seconds=time.perf_counter() - started)
        return response

    async def _acall(self, request):
        started = time.perf_counter()
        response = await self.get_response(request)
        request_observe(path=request.path_info, status=response.status_code, seconds=time.perf_counter() - started)
        return response
