"""Log lines: one JSON object a line in production (LOG_FORMAT=json), the plain format
in development (LOG_FORMAT=plain); settings LOGGING wires them to the console handler.

Every record gets the request id and, in a Celery task, the task's name and id
(RequestContextFilter, from apps/core/request_id.py). Fields a call passes with
`extra=` (an ingest batch's request ids and network ids, say) become JSON fields."""
from __future__ import annotations

import datetime as dt
import json
import logging

from .request_id import request_id_current, task_current

# what every LogRecord has; anything else on a record came from `extra=` (or the filter below)
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_CONTEXT = ("request_id", "task_name", "task_id")


class RequestContextFilter(logging.Filter):
    """Puts the request id and the running task on the record (a handler's filter: it
    sees the records of every logger that propagates to the handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_current()
        task = task_current()
        if task is not None and not hasattr(record, "task_name"):
            record.task_name, record.task_id = task
        return True


def _extras(record: logging.LogRecord) -> dict:
    return {k: v for k, v in vars(record).items()
            if k not in _RECORD_ATTRIBUTES and k not in _CONTEXT and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """timestamp (UTC, ms), level, logger, message, request_id, task_name/task_id in a
    task, exc_info and stack_info as text, then the record's extras. One line: newlines
    inside a message or traceback are escaped by JSON."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "timestamp": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or "",
        }
        if getattr(record, "task_name", None):
            line["task_name"], line["task_id"] = record.task_name, record.task_id
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        for key, value in _extras(record).items():
            line.setdefault(key, value)
        return json.dumps(line, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """Development: `time LEVEL logger: message`, then the request id and any extras as key=value."""

    def __init__(self, fmt: str = "%(asctime)s %(levelname)s %(name)s: %(message)s", **kwargs):
        super().__init__(fmt, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        tail = [f"request_id={record.request_id}"] if getattr(record, "request_id", None) else []
        tail += [f"{k}={v}" for k, v in _extras(record).items()]
        if not tail:
            return text
        first, sep, rest = text.partition("\n")  # after the message, before a traceback
        return f"{first} [{' '.join(tail)}]{sep}{rest}"
