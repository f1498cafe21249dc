"""Push delivery: POST /hooks/<provider>/<account>/ (and GET for CRC/challenge
handshakes).

The view finds the account, hands the request to its network's push receiver
(providers.push_receiver: verify, then parse into InboundMentions) and queues
the mentions for ingest. Everything refused (unknown account, unsigned, bad
signature, stale timestamp, replay, oversized, malformed) gets a JSON
{"detail": ...} with its status, a log line and a count on the account, which
the connector-health page shows.

The helpers below are what receivers use: constant-time comparisons only."""
from __future__ import annotations

import base64
import contextvars
import hashlib
import hmac
import json
import logging
import math
import time

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.core import sanitize
from apps.core.kv import kv_add, kv_delete, kv_get, kv_set

from . import health, push, selectors
from .providers import push_receiver
from .providers.base import MalformedPayload
from .push_writer import PushStoreTimeout

log = logging.getLogger(__name__)


class HookRefused(Exception):
    """A delivery we will not take; `detail` goes back to the sender."""

    def __init__(self, detail: str, status: int = 401):
        super().__init__(detail)
        self.detail, self.status = detail, status


# --- helpers for receivers ---------------------------------------------------------
def hmac_sha256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def hmac_hex(secret: str, message: bytes) -> str:
    return hmac_sha256(secret, message).hex()


def hmac_b64(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac_sha256(secret, message)).decode()


def secret_compare(expected: str, given: str | None, *, what: str = "signature") -> None:
    """Constant-time: the time taken does not tell how much of a guess was right."""
    if not given:
        raise HookRefused(f"The delivery carries no {what}.")
    if not hmac.compare_digest(expected.encode(), given.strip().encode()):
        raise HookRefused(f"The {what} does not match.")


def timestamp_check(value: str | None) -> int:
    """A signed timestamp must be within HOOKS_REPLAY_WINDOW_SECONDS of now."""
    if not value or not value.strip().isdigit():
        raise HookRefused("The delivery carries no timestamp.")
    ts = int(value.strip())
    window = settings.HOOKS_REPLAY_WINDOW_SECONDS
    if abs(time.time() - ts) > window:
        raise HookRefused(f"The timestamp is outside the {window} s replay window.")
    return ts


# A delivery being received claims its signature for this long; marked received (for the replay
# window) only once it is stored. A web worker killed between the two (or a 5xx) used to leave the
# signature taken, so the sender's retry was a "replay" (409) and the delivery was lost (the soak's
# web fault); now the retry gets 503 until the claim lapses, then is taken.
REPLAY_IN_FLIGHT_SECONDS = 30
_replay_claim: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar("hook_replay", default=None)


def replay_check(account_id: int, signature: str) -> None:
    """The same signed delivery is taken once within the replay window."""
    key = f"hook-replay:{account_id}:{hashlib.sha256(signature.encode()).hexdigest()}"
    if not kv_add(key, "in-flight", REPLAY_IN_FLIGHT_SECONDS):
        if kv_get(key) == "in-flight":
            raise HookRefused("This delivery is being received; try again shortly.", 503)
        raise HookRefused("This delivery was already received (replay).", 409)
    _replay_claim.set((key, settings.HOOKS_REPLAY_WINDOW_SECONDS * 2))


def _replay_settle(*, stored: bool) -> None:
    """The claim of this request's delivery: received (stored), or given back (not stored)."""
    claim = _replay_claim.get()
    if claim is None:
        return
    _replay_claim.set(None)
    try:
        if stored:
            kv_set(claim[0], "received", claim[1])
        else:
            kv_delete(claim[0])
    except Exception:  # noqa: BLE001 - Redis down: the claim lapses by itself; a re-sent copy is deduped
        log.warning("replay claim of a push delivery not settled (cache unreachable)")


def body_read(request) -> bytes:
    limit = settings.HOOKS_MAX_BODY_BYTES
    length = request.META.get("CONTENT_LENGTH") or ""
    if length.isdigit() and int(length) > limit:
        raise HookRefused(f"The delivery is larger than {limit} bytes.", 413)
    body = request.read(limit + 1)
    if len(body) > limit:
        raise HookRefused(f"The delivery is larger than {limit} bytes.", 413)
    return body


def _not_json(token: str):
    raise ValueError(f"{token} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def json_load(body: bytes):
    try:
        # NaN, Infinity and 1e999 are not JSON (RFC 8259): PostgreSQL's json refuses them when
        # the delivery is stored, which was a 500
        data = json.loads(body or b"null", parse_constant=_not_json, parse_float=_finite_float)
    except ValueError:
        raise HookRefused("The body is not JSON.", 400) from None
    except RecursionError:  # 3,000 nested "[": json's recursion gives up
        raise HookRefused(f"The JSON nests deeper than {sanitize.MAX_DEPTH} levels.", 400) from None
    if sanitize.depth_exceeds(data):  # parsed, but the storable copy and json.dumps recurse too
        raise HookRefused(f"The JSON nests deeper than {sanitize.MAX_DEPTH} levels.", 400)
    return data


# --- the view --------------------------------------------------------------------------
def _refuse(account, request, exc: HookRefused) -> JsonResponse:
    # the reason may quote the sender (a created_at holding a NUL): stored on the account, so storable
    exc.detail = sanitize.text_clean(str(exc.detail))[:500]
    log.warning("push delivery refused: %s %s account=%s from=%s status=%s: %s", request.method, request.path,
                getattr(account, "pk", None), request.META.get("REMOTE_ADDR"), exc.status, exc.detail)
    if account is not None:
        health.push_delivery_refuse(account=account, reason=exc.detail)
    return JsonResponse({"detail": exc.detail}, status=exc.status)


def _parse(receiver, request, body: bytes) -> list:
    """A signed delivery of the wrong shape is the sender's error (400 with the reason),
    never ours: the receivers check shapes (MalformedPayload), and whatever slips past
    them while reading untrusted JSON is refused the same way, not a 500."""
    try:
        return receiver.push_parse(request, body)
    except MalformedPayload as exc:
        raise HookRefused(f"Malformed delivery: {exc}", 400) from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError, RecursionError) as exc:
        log.warning("push delivery of an unexpected shape", exc_info=True)
        raise HookRefused(f"Malformed delivery ({exc.__class__.__name__}).", 400) from None


@csrf_exempt
def hook_receive(request, provider: str, account_id: int):
    _replay_claim.set(None)
    account = selectors.push_account_get(provider=provider, account_id=account_id)
    receiver = push_receiver(account) if account else None
    if receiver is None:
        return _refuse(None, request, HookRefused("No push channel here.", 404))
    try:
        if request.method == "GET":
            challenge = getattr(receiver, "push_challenge", None)
            if challenge is None:
                raise HookRefused("This channel answers no handshake.", 405)
            return JsonResponse(challenge(request))
        if request.method != "POST":
            raise HookRefused("Use POST.", 405)
        body = body_read(request)
        receiver.push_verify(request, body)
        mentions = _parse(receiver, request, body)
    except HookRefused as exc:
        _replay_settle(stored=False)
        return _refuse(account, request, exc)
    try:
        accepted = push.push_delivery_accept(account=account, mentions=mentions)
    except PushStoreTimeout as exc:
        _replay_settle(stored=False)
        log.warning("push delivery for account %s not stored in time: %s", account.pk, exc)
        return JsonResponse({"detail": "The delivery could not be stored in time; send it again."}, status=503,
                            headers={"Retry-After": "5"})
    except BaseException:
        _replay_settle(stored=False)  # a 5xx: the sender's retry of the same signed delivery is taken
        raise
    _replay_settle(stored=True)
    # the first line of a mention's trail: network ids under this request's id (the first 500; ingest names all)
    log.info("push delivery accepted: %d mentions for account %s", accepted, account.pk,
             extra={"account": account.pk, "network_ids": [m.external_id for m in mentions[:500]]})
    return JsonResponse({"accepted": accepted})
