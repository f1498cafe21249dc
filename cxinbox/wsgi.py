import gc
import os

from django.core.wsgi import get_wsgi_application

# A deploy entry point (gunicorn, daphne, celery -A cxinbox): production unless told
# otherwise, so a missing variable fails at start instead of serving with DEBUG on.
# `make run` (Procfile) and the tests name their settings (docs/operations.md).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxinbox.settings.production")
application = get_wsgi_application()

from apps.connectors.providers import import_all  # noqa: E402  (needs Django set up)

import_all()  # at start, not in a user's first thread page (docs/performance-history.md)

# What start-up loaded lives as long as the process: frozen, the collector's full passes
# no longer walk it (a pause of ~45 ms every few report requests; docs/performance-history.md item 21).
gc.collect()
gc.freeze()
