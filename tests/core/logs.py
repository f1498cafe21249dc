"""A handler on the root logger that keeps what it formats as production does (the
request-context filter and the JSON formatter of settings LOGGING), for tests that
read the log lines a request or a worker writes."""
from __future__ import annotations

import io
import json
import logging

import pytest

from apps.core.logging import JsonFormatter, RequestContextFilter


class JsonLines:
    def __init__(self):
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.addFilter(RequestContextFilter())
        self.handler.setFormatter(JsonFormatter())

    def lines(self) -> list[dict]:
        text = self.stream.getvalue()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def raw(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def json_log():
    """Root at INFO (the test settings say WARNING) with a JSON handler; restored after."""
    root = logging.getLogger()
    capture = JsonLines()
    level = root.level
    root.addHandler(capture.handler)
    root.setLevel(logging.INFO)
    try:
        yield capture
    finally:
        root.removeHandler(capture.handler)
        root.setLevel(level)
