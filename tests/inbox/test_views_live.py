"""The inbox websocket: who may connect, what it pushes, presence between two agents."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from apps.inbox import services
from apps.inbox.consumers import InboxConsumer
from tests.factories import ConversationFactory, MessageFactory, QueueFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("local_channel_layers")]


async def _connect(user):
    comm = WebsocketCommunicator(InboxConsumer.as_asgi(), "/ws/inbox/")
    comm.scope["user"] = user
    connected, code = await comm.connect()
    return comm, connected, code


async def _next(comm, kind, timeout=2):
    while True:
        event = await comm.receive_json_from(timeout=timeout)
        if event["kind"] == kind:
            return event


def test_marketing_and_anonymous_are_refused(marketing_user):
    from django.contrib.auth.models import AnonymousUser

    async def run():
        for user in (marketing_user, AnonymousUser()):
            comm, connected, code = await _connect(user)
            assert not connected and code == 4403

    async_to_sync(run)()


def test_changes_and_toasts_arrive_and_presence_is_shared(agent, supervisor, queue, twitter_account):
    conv = ConversationFactory(channel_account=twitter_account, queue=queue)
    MessageFactory(conversation=conv)
    hidden = ConversationFactory(channel_account=twitter_account, queue=QueueFactory())

    async def run():
        a, ok_a, _ = await _connect(agent)
        s, ok_s, _ = await _connect(supervisor)
        assert ok_a and ok_s
        assert (await a.receive_json_from())["kind"] == "hello"
        assert (await s.receive_json_from())["kind"] == "hello"

        # the supervisor assigns to the agent: everyone sees the change, the agent gets a toast
        await database_sync_to_async(services.conversation_assign)(
            conversation=conv, assignee=agent, actor=supervisor)
        seen = [await a.receive_json_from(), await a.receive_json_from()]
        assert {e["kind"] for e in seen} == {"assigned"}
        toast = next(e for e in seen if e.get("notification_id"))
        assert toast["conversation_id"] == conv.pk and toast["actor"] == supervisor.display_name
        assert (await _next(s, "assigned"))["assignee_id"] == agent.pk

        # collision control: the supervisor opens the thread and types; the agent is told
        await s.send_json_to({"action": "view", "conversation_id": conv.pk})
        event = await _next(a, "presence")
        assert event["conversation_id"] == conv.pk and event["viewers"][0]["name"] == supervisor.display_name
        await s.send_json_to({"action": "typing", "typing": True})
        event = await _next(a, "presence")
        assert event["viewers"] == [{"user_id": supervisor.pk, "name": supervisor.display_name, "typing": True}]
        await s.disconnect()
        assert (await _next(a, "presence"))["viewers"] == []

        # a conversation the agent may not see cannot be "viewed"
        await a.send_json_to({"action": "view", "conversation_id": hidden.pk})
        assert (await _next(a, "error"))["detail"] == "No conversation with that id."
        await a.disconnect()

    async_to_sync(run)()


def test_a_batch_of_changes_arrives_as_one_frame_per_change_in_order(agent, team):
    """Routing and ingest push a batch in one group message; a page that did not ask
    for list frames (one from before a deploy) still gets each change as its own
    frame, in the order they were made, without the `conversation_updated` beside
    another change of the same conversation (tests/inbox/test_live_fanout.py: list frames)."""
    from apps.inbox.realtime import inbox_push_each

    # conversations of the agent's team: only those are pushed to them (docs/roles.md, Ownership)
    c7, c8 = (ConversationFactory(queue=QueueFactory(team=team)).pk for _ in range(2))

    async def run():
        a, ok, _ = await _connect(agent)
        assert ok and (await a.receive_json_from())["kind"] == "hello"
        await database_sync_to_async(inbox_push_each)([
            ("priority_changed", c7, {"priority_bucket": 0}), ("assigned", c8, {"assignee_id": agent.pk}),
            ("conversation_updated", c7, {})])
        frames = [await a.receive_json_from() for _ in range(2)]
        assert frames == [{"kind": "priority_changed", "conversation_id": c7, "priority_bucket": 0},
                          {"kind": "assigned", "conversation_id": c8, "assignee_id": agent.pk}]
        assert await a.receive_nothing()
        await a.disconnect()

    async_to_sync(run)()
