"""Shared by the providers that speak plain HTTP (httpx): one client per
provider with the timeout setting, and HTTP failures mapped to the connector's
error kinds (base.py) with the network's name in the reason shown to users."""
from __future__ import annotations

import datetime as dt
import email.utils

import httpx
from django.conf import settings
from django.utils import timezone

from .base import AuthError, PermanentError, RateLimited, TransientError, UnknownOutcome


def http_client(base_url: str, *, headers: dict | None = None) -> httpx.Client:
    return httpx.Client(base_url=base_url.rstrip("/"), headers=headers or {},
                        timeout=settings.PROVIDER_TIMEOUT_SECONDS, follow_redirects=False)


def reset_time(resp: httpx.Response, *, default_seconds: int = 300) -> dt.datetime:
    """When a 429 lifts: Retry-After (seconds or HTTP date), X-RateLimit-Reset
    (Mastodon sends an ISO 8601 time, others epoch seconds), else a default."""
    now = timezone.now()
    retry_after = resp.headers.get("retry-after", "").strip()
    if retry_after.isdigit():
        return now + dt.timedelta(seconds=int(retry_after))
    if retry_after:
        try:
            return email.utils.parsedate_to_datetime(retry_after)
        except (TypeError, ValueError):
            pass
    reset = resp.headers.get("x-ratelimit-reset", "").strip()
    if reset.isdigit():
        return dt.datetime.fromtimestamp(int(reset), tz=dt.timezone.utc)
    if reset:
        try:
            return dt.datetime.fromisoformat(reset.replace("Z", "+00:00"))
        except ValueError:
            pass
    return now + dt.timedelta(seconds=default_seconds)


def api_detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return (resp.text or resp.reason_phrase or "no detail")[:300]
    if isinstance(body, dict):
        for key in ("error_description", "error", "detail", "message", "title"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:300]


def check_response(resp: httpx.Response, network: str, *, unknown_outcome: bool = False) -> httpx.Response:
    """Raises the connector error for a failed response; returns it otherwise."""
    status = resp.status_code
    if status < 400:
        return resp
    if status == 429:
        reset_at = reset_time(resp)
        raise RateLimited(f"{network} rate limit reached; resets at {reset_at:%H:%M:%S} UTC", reset_at)
    if status in (401, 403):
        raise AuthError(f"{network} refused the credentials ({status}): {api_detail(resp)}")
    if 400 <= status < 500:
        raise PermanentError(f"{network} refused the request ({status}): {api_detail(resp)}")
    cls = UnknownOutcome if unknown_outcome else TransientError
    raise cls(f"{network} server error {status}")


def request(client: httpx.Client, method: str, url: str, network: str, *, unknown_outcome: bool = False,
            **kwargs) -> httpx.Response:
    """One call with transport errors mapped. A timeout after the request was
    sent is an unknown outcome for writes: the caller checks before retrying."""
    try:
        resp = client.request(method, url, **kwargs)
    except httpx.ConnectTimeout as exc:
        raise TransientError(f"{network} did not accept the connection in time") from exc
    except httpx.ConnectError as exc:
        raise TransientError(f"{network} unreachable: {exc.__class__.__name__}") from exc
    except httpx.TimeoutException as exc:
        cls = UnknownOutcome if unknown_outcome else TransientError
        raise cls(f"{network} did not answer in time") from exc
    except httpx.TransportError as exc:
        cls = UnknownOutcome if unknown_outcome else TransientError
        raise cls(f"{network} connection failed: {exc.__class__.__name__}") from exc
    return check_response(resp, network, unknown_outcome=unknown_outcome)


def json_body(resp: httpx.Response, network: str):
    try:
        return resp.json()
    except ValueError as exc:
        raise TransientError(f"{network} sent a malformed response (not JSON)") from exc
