from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "apps.reports"
    label = "reports"

    def ready(self):
        from . import receivers  # noqa: F401 - connects to the inbox's signals (apps/inbox/signals.py)
