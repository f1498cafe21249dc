from .logs import json_log  # noqa: F401 - fixture: the JSON log lines a test's code writes
