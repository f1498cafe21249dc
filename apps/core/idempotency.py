"""`Idempotency-Key` on every POST and PATCH under /api/v1/.

A client that sends the header may send the request again (a lost 202, a
retry, a double click) without doing the work twice:
- same user + key + request -> the first response replayed (status and body),
  with `Idempotent-Replayed: true`;
- same user + key, another method, path or body -> 422;
- a second request while the first is still running waits for it (row lock on
  the key's unique index), then replays; past IDEMPOTENCY_WAIT_SECONDS -> 409.

The key row is inserted in the same transaction as the view's writes, so the
write and its recorded response commit together or not at all: a request that
fails (5xx, 429, an exception) leaves no key behind and can be retried.
Keys are kept IDEMPOTENCY_KEY_TTL_HOURS (24 h), then purged by beat."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, OperationalError, connection, transaction
from django.http import HttpResponse, JsonResponse
from django.http.request import RawPostDataException
from django.utils import timezone

from .models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
API_PREFIX = "/api/v1/"
METHODS = ("POST", "PATCH")
_KEY_RE = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,254}")  # printable ASCII, 1-255 characters


def _ttl() -> dt.timedelta:
    return dt.timedelta(hours=getattr(settings, "IDEMPOTENCY_KEY_TTL_HOURS", 24))


def _detail(status: int, detail: str, **headers) -> JsonResponse:
    response = JsonResponse({"detail": detail}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def request_fingerprint(request, body: bytes) -> str:
    """The request as the key remembers it. JSON bodies are compared as JSON (key
    order and spacing do not make another request)."""
    canonical = body
    if body and "json" in (request.content_type or ""):
        try:
            canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
        except (ValueError, RecursionError, UnicodeError):
            pass
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.get_full_path().encode(), canonical):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def _api_user(request, view_func):
    """The user the API view will see: DRF authenticates inside the view, after
    middleware, so its authenticators are asked here. None: the view answers."""
    view_class = getattr(view_func, "cls", None)
    if view_class is None:
        return None
    from rest_framework.exceptions import APIException
    from rest_framework.request import Request

    drf_request = Request(request, authenticators=[auth() for auth in view_class.authentication_classes])
    try:
        user = drf_request.user
    except APIException:  # bad token, CSRF: the view gives its own 401/403
        return None
    return user if user is not None and user.is_authenticated else None


def _lock_wait_set(value: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)", [value])
        return cursor.fetchone()[0]


def _claim(*, user, key: str, fingerprint: str):
    """Inserts the key row (uncommitted: it holds the key until this transaction
    ends). Returns (row, None) when this request does the work, (None, earlier
    row) when the key was used, (None, None) when the first request is still
    running past the wait."""
    postgres = connection.vendor == "postgresql"
    for _ in range(3):
        try:
            with transaction.atomic():
                wait_ms = int(getattr(settings, "IDEMPOTENCY_WAIT_SECONDS", 10) * 1000)
                old = _lock_wait_set(f"{wait_ms}ms") if postgres else None
                row = IdempotencyKey.objects.create(user=user, key=key, fingerprint=fingerprint)
                if postgres:
                    _lock_wait_set(old)
                return row, None
        except IntegrityError:
            earlier = IdempotencyKey.objects.filter(user=user, key=key).first()
            if earlier is None:
                continue  # purged or rolled back meanwhile: claim it again
            if earlier.created_at < timezone.now() - _ttl():
                IdempotencyKey.objects.filter(pk=earlier.pk).delete()  # expired, not purged yet
                continue
            return None, earlier
        except OperationalError as exc:
            cause = exc.__cause__
            if (getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)) == "55P03":
                return None, None  # lock_not_available: the first request still runs
            raise
    return None, None


def _replay(row) -> HttpResponse:
    response = HttpResponse(row.response.get("body", ""), status=row.status_code,
                            content_type=row.response.get("content_type") or "application/json")
    response[REPLAYED_HEADER] = "true"
    return response


def _storable(response) -> bool:
    """Only a finished answer is replayed: a server error or a throttle (429) is
    tried again; a streamed body is not kept."""
    return response.status_code < 500 and response.status_code != 429 and not response.streaming


class IdempotencyMiddleware:
    """Last in MIDDLEWARE: it runs the API view itself, inside the transaction that
    holds the key."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method not in METHODS or not request.path.startswith(API_PREFIX):
            return None
        key = request.headers.get(HEADER)
        if key is None:
            return None
        if not _KEY_RE.fullmatch(key):
            return _detail(400, f"{HEADER} must be 1 to 255 printable ASCII characters.")
        user = _api_user(request, view_func)
        if user is None:
            return None
        try:
            body = request.body
        except (RawPostDataException, RequestDataTooBig):
            return None  # the view answers (413 for a body past DATA_UPLOAD_MAX_MEMORY_SIZE)
        fingerprint = request_fingerprint(request, body)
        with transaction.atomic():
            row, earlier = _claim(user=user, key=key, fingerprint=fingerprint)
            if row is None:
                if earlier is None:
                    return _detail(409, f"A request with this {HEADER} is still in progress; retry shortly.",
                                   Retry_After="1")
                if earlier.fingerprint != fingerprint:
                    return _detail(422, f"This {HEADER} was used for another request (method, path or body); "
                                        "send a new key for a new request.")
                return _replay(earlier)
            response = view_func(request, *view_args, **view_kwargs)
            if callable(getattr(response, "render", None)):
                response = response.render()
            if not _storable(response):
                # nothing to replay: no key kept, and what the view wrote before failing goes too
                transaction.set_rollback(True)
                return response
            try:
                text = response.content.decode()
            except UnicodeDecodeError:
                row.delete()
                return response
            row.status_code = response.status_code
            row.response = {"body": text, "content_type": response.get("Content-Type", "")}
            row.save(update_fields=["status_code", "response"])
        return response


def idempotency_keys_purge(*, now: dt.datetime | None = None) -> int:
    """Drops keys older than the retention (beat: core.idempotency_keys_purge)."""
    cutoff = (now or timezone.now()) - _ttl()
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted


IDEMPOTENCY_PARAMETER = {
    "in": "header", "name": HEADER, "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": ("Makes this write safe to retry: the same key with the same request replays the first "
                    "response (header Idempotent-Replayed: true); the same key with another request is a 422. "
                    "Keys are per user and kept 24 hours."),
}
# detail: a sentence, or (a view's own 400) the fields' errors
_ERROR = {"application/json": {"schema": {"type": "object", "properties": {"detail": {}}, "required": ["detail"]}}}


def spectacular_idempotency_hook(result, generator, request, public):
    """drf-spectacular postprocessing: documents the header and its answers on
    every POST and PATCH under /api/v1/."""
    for path, operations in result.get("paths", {}).items():
        if not path.startswith(API_PREFIX):
            continue
        for method, operation in operations.items():
            if method.upper() not in METHODS:
                continue
            params = operation.setdefault("parameters", [])
            if not any(p.get("name") == HEADER and p.get("in") == "header" for p in params):
                params.append(dict(IDEMPOTENCY_PARAMETER))
            responses = operation.setdefault("responses", {})
            for code, text in (("400", "Invalid request or Idempotency-Key"),
                               ("409", "A request with this Idempotency-Key is still in progress"),
                               ("422", "The Idempotency-Key was used for another request")):
                responses.setdefault(code, {"description": text, "content": _ERROR})
    return result
