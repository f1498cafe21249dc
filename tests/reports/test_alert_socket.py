"""Spike alerts reach the report pages of supervisors and marketing over the websocket."""
import datetime as dt

from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from apps.reports.models import SpikeAlert
from apps.reports.realtime import alert_push
from cxinbox.routing import websocket_urlpatterns
from tests.factories import UserFactory


def test_marketing_receives_alert_and_agent_is_refused(db, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    marketing, agent = UserFactory(role="marketing"), UserFactory(role="agent")
    alert = SpikeAlert.objects.create(
        kind="volume", channel="twitter", bucket=dt.datetime(2026, 11, 5, 14, tzinfo=dt.timezone.utc), value=12,
        baseline=0.5, message="twitter: 12 inbound messages this hour")

    async def scenario():
        app = URLRouter(websocket_urlpatterns)
        refused = WebsocketCommunicator(app, "/ws/reports/")
        refused.scope["user"] = agent
        assert (await refused.connect())[0] is False
        listener = WebsocketCommunicator(app, "/ws/reports/")
        listener.scope["user"] = marketing
        assert (await listener.connect())[0] is True
        await sync_to_async(alert_push)(alert)  # what services do after the alert commits
        received = await listener.receive_json_from(timeout=2)
        await listener.disconnect()
        return received

    received = async_to_sync(scenario)()
    assert received["kind"] == "volume" and "12 inbound" in received["message"]
