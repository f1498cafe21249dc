"""The request id: what every log line names so that one mention can be followed
from the webhook through ingest and routing to the reply (docs/operations.md,
"Following a mention").

A web request takes a sane incoming X-Request-ID (a proxy's or a sender's) or gets a
new one, and answers with it. Celery tasks carry the id of whatever queued them in
their headers (cxinbox/celery.py connects the signals below); a task queued by no
request (beat) gets one of its own. A push delivery keeps the id of the request that
stored it (connectors.PushDelivery.request_id), so a batch ingesting many deliveries
can name them all. The id lives in a context variable: each request's thread or task
sees its own, and apps/core/logging.py puts it on every log record."""
from __future__ import annotations

import contextvars
import re
import uuid

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

HEADER = "X-Request-ID"
MAX_LENGTH = 64
# a proxy's id (nginx $request_id, a UUID) passes; anything that could forge a log line or a header does not
_SANE = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_LENGTH}}}")
# the Celery message header that carries it (before_task_publish -> task_prerun)
TASK_HEADER = "cxinbox_request_id"

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
# (task name, task id) while a Celery task runs in this context: log lines name it too
_task: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("celery_task", default=None)


def request_id_new() -> str:
    return uuid.uuid4().hex


def request_id_sane(value: str | None) -> str | None:
    """`value` if it is fit to be logged and echoed (bounded, [A-Za-z0-9._-]), else None."""
    if value and _SANE.fullmatch(value):
        return value
    return None


def request_id_current() -> str:
    """The id of the request or task this code works for ("" outside of both)."""
    return _request_id.get()


def task_current() -> tuple[str, str] | None:
    return _task.get()


# --- web requests ------------------------------------------------------------------------

class RequestIdMiddleware:
    """Early in MIDDLEWARE: everything below it (and its log lines) runs under the id,
    and the response carries it back in X-Request-ID. Sync and async capable."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _start(self, request) -> tuple[str, contextvars.Token]:
        request_id = request_id_sane(request.META.get("HTTP_X_REQUEST_ID")) or request_id_new()
        request.request_id = request_id
        return request_id, _request_id.set(request_id)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        request_id, token = self._start(request)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response[HEADER] = request_id
        return response

    async def _acall(self, request):
        request_id, token = self._start(request)
        try:
            response = await self.get_response(request)
        finally:
            _request_id.reset(token)
        response[HEADER] = request_id
        return response


# --- Celery tasks (connected in cxinbox/celery.py) ----------------------------------------

def task_headers_add(headers: dict | None) -> None:
    """before_task_publish: the task carries the id of whatever queues it."""
    request_id = _request_id.get()
    if headers is not None and request_id:
        headers.setdefault(TASK_HEADER, request_id)


def task_started(task) -> None:
    """task_prerun: the task runs under the id it carries, or one of its own. A task run
    eagerly (tests) runs inside its caller and keeps the caller's id."""
    request = task.request
    if getattr(request, "is_eager", False):
        return
    _request_id.set(request_id_sane(getattr(request, TASK_HEADER, None)) or request_id_new())
    _task.set((task.name, request.id or ""))


def task_finished(task) -> None:
    """task_postrun: the worker's next task starts clean."""
    if getattr(task.request, "is_eager", False):
        return
    _request_id.set("")
    _task.set(None)
