from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "apps.routing"
    label = "routing"

    def ready(self):
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from apps.accounts.models import Team
        from apps.connectors.models import ChannelAccount
        from apps.inbox.models import CannedResponse, Queue

        from .config_cache import routing_config_changed
        from .models import BusinessHours, Holiday, RoutingRule, SlaPolicy

        # what RoutingCache shares between batches: any change makes every process read it again
        for model in (RoutingRule, Queue, SlaPolicy, BusinessHours, Holiday, Team, CannedResponse, ChannelAccount):
            for name, signal in (("save", post_save), ("delete", post_delete)):
                signal.connect(routing_config_changed, sender=model,
                               dispatch_uid=f"routing.config.{name}.{model._meta.label_lower}")
        m2m_changed.connect(routing_config_changed, sender=RoutingRule.channel_accounts.through,
                            dispatch_uid="routing.config.rule_accounts")
        from . import receivers  # noqa: F401 - what accounts announce (apps/accounts/availability.py)
