from django.apps import AppConfig


class OpsConfig(AppConfig):
    """What an operator watches (/metrics). The top layer: it reads every app, none reads it."""

    name = "apps.ops"
    label = "ops"
