"""GET /metrics for Prometheus: no session, no CSRF; guarded by a bearer token
(METRICS_TOKEN) or a list of client addresses (METRICS_ALLOW_IPS). With neither set
the endpoint does not exist (404)."""
import functools
import hmac
import ipaddress

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from apps.accounts.lockout import client_ip_address

from .metrics import exposition


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries if e.strip())


def _address_allowed(request) -> bool:
    networks = _networks(tuple(settings.METRICS_ALLOW_IPS or ()))
    if not networks:
        return False
    # the client as the lockout and throttles see it: behind TRUSTED_PROXY_COUNT proxies, their entry
    address = client_ip_address(request)
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in net for net in networks if net.version == ip.version)


def _bearer(request) -> str | None:
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@csrf_exempt
@require_GET
def metrics(request):
    token = settings.METRICS_TOKEN
    if not (token or settings.METRICS_ALLOW_IPS):
        raise Http404  # not configured: nothing here
    if not _address_allowed(request):
        if not token:
            raise Http404  # an allow-list only: to anyone else, nothing here
        given = _bearer(request)
        if given is None:
            response = HttpResponse("Bearer token required.\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        if not hmac.compare_digest(given.encode(), token.encode()):
            return HttpResponse("Wrong token.\n", status=403, content_type="text/plain")
    body, content_type = exposition()
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
