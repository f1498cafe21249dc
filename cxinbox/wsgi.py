import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxinbox.settings.base")
application = get_wsgi_application()

from apps.connectors.providers import import_all  # noqa: E402  (needs Django set up)

import_all()  # at start, not in a user's first thread page (docs/performance.md)
