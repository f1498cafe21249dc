"""GET /healthz: database, Redis and worker reachability, as JSON (503 if any is down)."""
import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.views.decorators.cache import cache_control


def _check_database() -> dict:
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001 - report, don't raise
        return {"ok": False, "error": exc.__class__.__name__}


def _check_redis() -> dict:
    if not settings.REDIS_URL:
        return {"ok": True, "note": "not configured (embedded broker)"}
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping()
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": exc.__class__.__name__}


def _check_workers() -> dict:
    if not settings.REDIS_URL:
        return {"ok": True, "note": "not checked with the embedded broker"}
    from cxinbox.celery import app

    started = time.monotonic()
    try:
        replies = app.control.ping(timeout=1.0)
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": exc.__class__.__name__}
    return {"ok": bool(replies), "workers": len(replies), "ms": round((time.monotonic() - started) * 1000)}


def healthz(request):
    checks = {"database": _check_database(), "redis": _check_redis()}
    checks["workers"] = _check_workers() if checks["redis"]["ok"] else {"ok": False, "error": "redis down"}
    ok = all(c["ok"] for c in checks.values())
    return JsonResponse({"ok": ok, "checks": checks}, status=200 if ok else 503)


@cache_control(max_age=86400, public=True)
def favicon(request):
    """/favicon.ico, which browsers ask for on pages without a <link rel="icon"> (the API, the admin):
    the static SVG icon, not a 404 in the logs."""
    return redirect(static("favicon.svg"), permanent=True)


# Errors Django raises before DRF sees the request (no URL matched, a crash):
# under /api/ they are JSON {"detail": ...} like every other API error.
def permission_denied(request, exception=None):
    """A page with the nav and the reason (templates/403.html), not a bare "403 Forbidden"."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": str(exception or "") or "Forbidden."}, status=403)
    from django.views.defaults import permission_denied as html_permission_denied

    return html_permission_denied(request, exception)


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Server error."}, status=500)
    from django.views.defaults import server_error as html_server_error

    return html_server_error(request)
