"""What routing hears from the layers below it, connected in RoutingConfig.ready(). Each
calls the service through the module, so a test that swaps the service swaps the call."""
from django.dispatch import receiver

from apps.accounts.availability import agent_availability_changed

from . import services


@receiver(agent_availability_changed, dispatch_uid="routing.agent_availability")
def work_for_available_agent(sender, *, agent, **kwargs) -> None:
    """An agent can take work again (or no longer can): the queue's waiting work is offered."""
    services.agent_availability_changed(agent=agent)
