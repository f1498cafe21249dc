"""Handle time from the inbox socket: opening a thread, input and leaving make a
work session; the report shows it for that agent."""
import datetime as dt
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from apps.inbox.consumers import InboxConsumer
from apps.reports import handle_time, rollups, selectors
from apps.reports.models import WorkSession
from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db(transaction=True)
T0 = dt.datetime(2026, 11, 3, 10, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(autouse=True)
def _local_layers(settings, request):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"handle-{request.node.name}"}}


def test_view_input_and_leave_over_the_socket_become_handle_time(agent, queue, twitter_account):
    conversation = ConversationFactory(channel_account=twitter_account, queue=queue)
    MessageFactory(conversation=conversation)
    now = [T0]

    async def run():
        comm = WebsocketCommunicator(InboxConsumer.as_asgi(), "/ws/inbox/")
        comm.scope["user"] = agent
        assert (await comm.connect())[0]
        await comm.receive_json_from()  # hello
        for minute, message in ((0, {"action": "view", "conversation_id": conversation.pk}),
                                (1, {"action": "view", "conversation_id": conversation.pk}),  # the 20-s timer
                                (2, {"action": "heartbeat"}), (3, {"action": "typing", "typing": True}),
                                (4, {"action": "leave"})):
            now[0] = T0 + dt.timedelta(minutes=minute)
            await comm.send_json_to(message)
            await comm.receive_nothing(timeout=0.3)
            while not await comm.receive_nothing(timeout=0.1):
                await comm.receive_json_from()
        await comm.disconnect()

    with mock.patch("django.utils.timezone.now", side_effect=lambda: now[0]):
        async_to_sync(run)()
    session = WorkSession.objects.get(agent_id=agent.pk, conversation_id=conversation.pk)
    assert session.active_seconds == 240.0 and session.away
    handle_time.work_sessions_close_idle(now=T0 + dt.timedelta(minutes=20))
    rollups.rollups_apply()
    report = selectors.service_report(params=selectors.ReportParams(start=T0.date(), end=T0.date()))
    row = next(r for r in report["by_agent"] if r["agent_id"] == agent.pk)
    assert row["handle_time"]["median"] == 240.0 and row["handle_time_total"] == 240.0
