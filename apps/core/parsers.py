"""The API's JSON parser (REST_FRAMEWORK DEFAULT_PARSER_CLASSES). DRF's own lets
a deeply nested body ([[[[... 3,000 deep) escape as RecursionError (a 500) and
reads a body of any size. This one answers 400 {"detail": ...} for any body it
cannot take (bad JSON, too deep, NUL or a lone surrogate in a string: PostgreSQL
cannot store either) and 413 past DATA_UPLOAD_MAX_MEMORY_SIZE."""
from __future__ import annotations

import json

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32  # no input of the API nests deeper than a few levels


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def _check_strings(data) -> None:
    """Walks the parsed value without recursion: depth, NUL and lone surrogates."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ParseError(f"JSON nested more than {MAX_DEPTH} levels deep.")
        if isinstance(value, dict):
            stack.extend((k, depth) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str):
            if "\x00" in value:
                raise ParseError("NUL characters (\\u0000) are not allowed in text.")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ParseError("Text holds a lone surrogate (\\ud800-\\udfff): not valid Unicode.") from None


def loads_safe(raw: bytes, *, limit: int | None = None, strict: bool = True):
    """bytes -> the JSON value, or ParseError / PayloadTooLarge (for callers outside DRF's parsers too)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE if limit is None else limit
    if limit is not None and len(raw) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    try:
        data = json.loads(raw.decode("utf-8"),
                          parse_constant=_refuse_constant if strict else None)
    except RecursionError:
        raise ParseError("JSON nested too deeply.") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ParseError(f"JSON parse error - {exc}") from None
    _check_strings(data)
    return data


def _refuse_constant(name):
    raise ValueError(f"{name} is not valid JSON")


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        return loads_safe(raw, limit=limit, strict=self.strict)


__all__ = ["SafeJSONParser", "PayloadTooLarge", "loads_safe", "MAX_DEPTH"]
