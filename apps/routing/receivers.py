"""What routing hears from the layers below it, connected in RoutingConfig.ready(). Each
calls the service through its module, so a test that swaps the service swaps the call."""
from django.dispatch import receiver

from apps.accounts.availability import agent_availability_changed
from apps.inbox.signals import conversation_work_changed

from . import backlog


@receiver(agent_availability_changed, dispatch_uid="routing.agent_availability")
def work_for_available_agent(sender, *, agent, **kwargs) -> None:
    """An agent can take work again (or no longer can): the queue's waiting work is offered."""
    backlog.agent_availability_changed(agent=agent)


@receiver(conversation_work_changed, dispatch_uid="routing.conversation_work_changed")
def followup_after_change(sender, *, conversation_id: int, freed_agent_id: int | None = None, **kwargs) -> None:
    """A reply, a status or an assignment changed a conversation's work: SLA due times and a
    freed agent's next work follow after the commit."""
    backlog.conversation_work_changed(conversation_id=conversation_id, freed_agent_id=freed_agent_id)
