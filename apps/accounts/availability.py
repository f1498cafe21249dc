"""What accounts announce to the layers above them (docs/architecture.md, "Layers").

Routing connects in its AppConfig.ready() (apps/routing/receivers.py); accounts imports
no upper app."""
from django.dispatch import Signal

# An agent can take work now, or no longer can (presence set, a slot freed): agent=. Sent after
# the change commits (services.agent_availability_notify); routing offers waiting work.
agent_availability_changed = Signal()
