from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"

    def ready(self):
        from . import schema, signals  # noqa: F401 - login audit and presence receivers; OpenAPI token scheme
        from . import lockout  # noqa: F401 - a good login clears its own user's failures
