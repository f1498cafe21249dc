import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxinbox.settings.base")
application = get_wsgi_application()

from apps.connectors.providers import import_all  # noqa: E402  (needs Django set up)

import_all()  # at start, not in a user's first thread page (docs/performance.md)

# What start-up loaded lives as long as the process: frozen, the collector's full passes
# no longer walk it (a pause of ~45 ms every few report requests; docs/performance.md item 21).
gc.collect()
gc.freeze()
