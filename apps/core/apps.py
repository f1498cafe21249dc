from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self):
        from . import checks, lookups  # noqa: F401 - registers the system checks and the `__any` lookup
