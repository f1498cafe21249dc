"""Log lines (apps/core/logging.py): production writes one JSON object a line (timestamp,
level, logger, message, request_id, the task in a worker, exc_info as text, the extras);
development keeps the plain format. Started as the deploy starts them (a fresh
interpreter with the settings), reading what the console handler writes."""
import json
import logging
import sys

from apps.core import request_id as rid
from apps.core.logging import JsonFormatter, PlainFormatter, RequestContextFilter
from tests.deploy.test_production_settings import start

LOG_SOME = """
import django, logging
django.setup()
log = logging.getLogger("cx.check")
log.info("stored %d mentions", 3, extra={"account": 7, "mentions": {"req-1": {"n-1": 11}}})
try:
    1 / 0
except ZeroDivisionError:
    log.exception("it broke\\non two lines")
"""


def test_production_logs_one_json_object_a_line():
    done = start({"LOG_LEVEL": "INFO"}, code=LOG_SOME)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert len(lines) == 2 == len(done.stderr.splitlines()), done.stderr
    info, error = lines
    assert info["level"] == "INFO" and info["logger"] == "cx.check" and info["message"] == "stored 3 mentions"
    assert info["account"] == 7 and info["mentions"] == {"req-1": {"n-1": 11}}
    assert info["request_id"] == "" and info["timestamp"].endswith("Z")
    assert error["message"] == "it broke\non two lines"
    assert error["exc_info"].startswith("Traceback") and "ZeroDivisionError" in error["exc_info"]


def test_log_format_plain_keeps_the_development_format():
    done = start({"LOG_LEVEL": "INFO", "LOG_FORMAT": "plain"}, code=LOG_SOME)
    assert done.returncode == 0, done.stderr[-2000:]
    first = done.stderr.splitlines()[0]
    assert " INFO cx.check: stored 3 mentions [account=7 mentions={'req-1': {'n-1': 11}}]" in first


def _record(msg: str = "hello", **extra) -> logging.LogRecord:
    record = logging.LogRecord("cx.unit", logging.WARNING, __file__, 1, msg, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_the_filter_names_the_request_and_the_task():
    token, task = rid._request_id.set("req-77"), rid._task.set(("outbound.send_message", "t-1"))
    try:
        record = _record()
        RequestContextFilter().filter(record)
    finally:
        rid._request_id.reset(token)
        rid._task.reset(task)
    line = json.loads(JsonFormatter().format(record))
    assert (line["request_id"], line["task_name"], line["task_id"]) == ("req-77", "outbound.send_message", "t-1")
    assert PlainFormatter().format(record).endswith("cx.unit: hello [request_id=req-77]")


def test_exc_info_is_text_and_odd_values_do_not_break_a_line():
    try:
        raise ValueError("bad")
    except ValueError:
        record = _record("x", when=object(), ids={1, 2})
        record.exc_info = sys.exc_info()
    text = JsonFormatter().format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert "ValueError: bad" in line["exc_info"] and line["when"].startswith("<object")
