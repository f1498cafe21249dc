import gc
import os

from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application

# A deploy entry point (gunicorn, daphne, celery -A cxinbox): production unless told
# otherwise, so a missing variable fails at start instead of serving with DEBUG on.
# `make run` (Procfile) and the tests name their settings (docs/operations.md).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxinbox.settings.production")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up)

from apps.connectors.providers import import_all  # noqa: E402
from cxinbox.asgi_hooks import HooksHandler, http_router  # noqa: E402
from cxinbox.routing import websocket_urlpatterns  # noqa: E402

import_all()  # at start, not in a user's first thread page (docs/performance-history.md)

application = ProtocolTypeRouter({
    # /hooks/ (push deliveries) on Django's sync path in one thread: cxinbox/asgi_hooks.py
    "http": http_router(HooksHandler(), django_asgi_app),
    "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
})

# What start-up loaded lives as long as the process: frozen, the collector's full passes
# no longer walk it (a pause of ~45 ms every few report requests; docs/performance-history.md item 21).
gc.collect()
gc.freeze()
