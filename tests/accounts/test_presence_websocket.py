"""A websocket heartbeat is activity: an idle-away agent whose inbox tab is open comes back online."""
import datetime as dt

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from apps.accounts.models import Presence, User
from apps.inbox.consumers import InboxConsumer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _local_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def test_heartbeat_brings_idle_away_agent_back_online(agent):
    User.objects.filter(pk=agent.pk).update(presence=Presence.AWAY, presence_manual=False,
                                            last_seen_at=timezone.now() - dt.timedelta(minutes=10))
    agent.refresh_from_db()

    async def run():
        comm = WebsocketCommunicator(InboxConsumer.as_asgi(), "/ws/inbox/")
        comm.scope["user"] = agent
        connected, _ = await comm.connect()
        assert connected
        await comm.receive_json_from()  # hello
        await comm.send_json_to({"action": "heartbeat"})
        await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()

    async_to_sync(run)()
    agent.refresh_from_db()
    assert agent.presence == Presence.ONLINE
    assert (timezone.now() - agent.last_seen_at).total_seconds() < 5
