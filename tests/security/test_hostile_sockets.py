"""The websockets under hostile frames (issue 18): text that is not JSON, JSON that
is not an object, binary frames, a 1 MB frame, 50,000 nested brackets, unknown
actions, conversation ids that are strings, negative, huge, floats, another
team's. The consumer answers an error frame (or nothing), keeps the socket open,
keeps working, and tells nobody about a conversation the sender may not see."""
import json

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from apps.inbox.consumers import InboxConsumer
from apps.reports.consumers import ReportsAlertConsumer
from tests.factories import ConversationFactory, QueueFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("local_channel_layers")]

NOT_OBJECTS = ["not json", "{", "[1, 2]", "null", "42", '"view"', "[" * 4_000, "[" * 50_000, "{" * 50_000,
               '{"action": "view", "conversation_id": 1' + " " * 1_048_576 + "}", "\x00", '{"action": "\\ud800"}']
UNKNOWN = [{}, {"action": "nope"}, {"action": ["view"]}, {"action": {"a": 1}}, {"action": None}, {"action": 1},
           {"action": "typing", "typing": {"deep": [1, 2]}}, {"action": "leave"}, {"action": "x" * 100_000}]


@pytest.fixture
def world(db):
    team_a, team_b = TeamFactory(name="A"), TeamFactory(name="B")
    agent_a, agent_b = UserFactory(role="agent"), UserFactory(role="agent")
    team_a.members.add(agent_a)
    team_b.members.add(agent_b)
    conv_a = ConversationFactory(queue=QueueFactory(team=team_a), status="open")
    conv_b = ConversationFactory(queue=QueueFactory(team=team_b), status="open")
    return dict(agent_a=agent_a, agent_b=agent_b, conv_a=conv_a, conv_b=conv_b)


async def _connect(user, consumer=InboxConsumer, path="/ws/inbox/"):
    comm = WebsocketCommunicator(consumer.as_asgi(), path)
    comm.scope["user"] = user
    connected, _ = await comm.connect()
    assert connected
    return comm


async def _frames(comm, timeout=0.2) -> list[dict]:
    """What the browser was sent until it went quiet (re-raises if the consumer died)."""
    out = []
    while not await comm.receive_nothing(timeout=timeout):
        out.append(await comm.receive_json_from())
    assert not comm.future.done(), "the consumer stopped"
    return out


async def _still_works(comm, conversation):
    """After whatever came before, a real view is answered with its presence."""
    await comm.send_json_to({"action": "view", "conversation_id": conversation.pk})
    frames = await _frames(comm)
    assert any(f["kind"] == "presence" and f["conversation_id"] == conversation.pk for f in frames), frames


def test_frames_that_are_not_json_objects_get_an_error_and_the_socket_stays(world):
    async def run():
        comm = await _connect(world["agent_a"])
        assert (await comm.receive_json_from())["kind"] == "hello"
        for text in NOT_OBJECTS:
            await comm.send_to(text_data=text)
            frames = await _frames(comm)
            assert all(f["kind"] == "error" for f in frames), (text[:30], frames)
            assert all(len(json.dumps(f)) < 300 for f in frames)  # the frame is not echoed back
        await comm.send_to(bytes_data=b"\x00\xff" * 1000)
        assert all(f["kind"] == "error" for f in await _frames(comm))
        await _still_works(comm, world["conv_a"])
        await comm.disconnect()

    async_to_sync(run)()


def test_unknown_actions_are_ignored(world):
    async def run():
        comm = await _connect(world["agent_a"])
        await comm.receive_json_from()
        for content in UNKNOWN:
            await comm.send_json_to(content)
            assert all(f["kind"] == "error" for f in await _frames(comm)), content
        await _still_works(comm, world["conv_a"])
        await comm.disconnect()

    async_to_sync(run)()


@pytest.mark.parametrize("raw_id", ['"abc"', "-1", "0", "1e999", "-1e999", "NaN", "true", "null", "{}", "[]",
                                    "12.5", '"１２"', '"²"', "9" * 500, '"' + "9" * 500 + '"', str(2 ** 63),
                                    str(2 ** 64), '"-5"', '" 1"'])
def test_bad_conversation_ids_are_refused_without_a_crash(world, raw_id):
    async def run():
        comm = await _connect(world["agent_a"])
        await comm.receive_json_from()
        await comm.send_to(text_data='{"action": "view", "conversation_id": %s}' % raw_id)
        frames = await _frames(comm)
        assert not any(f["kind"] == "presence" for f in frames), frames
        await _still_works(comm, world["conv_a"])
        await comm.disconnect()

    async_to_sync(run)()


def test_another_teams_conversation_is_indistinguishable_from_none_and_announces_nothing(world):
    async def run():
        spy = await _connect(world["agent_b"])  # team B, who works on conv_b
        await spy.receive_json_from()
        await spy.send_json_to({"action": "view", "conversation_id": world["conv_b"].pk})
        await _frames(spy)
        comm = await _connect(world["agent_a"])
        await comm.receive_json_from()
        await comm.send_json_to({"action": "view", "conversation_id": world["conv_b"].pk})
        theirs = await _frames(comm)
        await comm.send_json_to({"action": "view", "conversation_id": 2 ** 62})
        missing = await _frames(comm)
        assert theirs == missing == [{"kind": "error", "detail": "No conversation with that id."}]
        await comm.send_json_to({"action": "typing", "typing": True})  # not viewing anything: nothing said
        assert await _frames(comm) == []
        # team B heard nothing of agent A, and their own view shows only themselves
        assert not [f for f in await _frames(spy) if f.get("kind") == "presence"]
        await _still_works(comm, world["conv_a"])
        assert not [f for f in await _frames(spy) if f.get("conversation_id") == world["conv_a"].pk]
        await comm.disconnect()
        await spy.disconnect()

    async_to_sync(run)()


def test_the_reports_socket_ignores_whatever_it_is_sent(world):
    supervisor = UserFactory(role="supervisor")

    async def run():
        comm = await _connect(supervisor, ReportsAlertConsumer, "/ws/reports/")
        for text in NOT_OBJECTS + [json.dumps(c) for c in UNKNOWN]:
            await comm.send_to(text_data=text)
            assert all(f["kind"] == "error" for f in await _frames(comm, timeout=0.05))
        await comm.send_to(bytes_data=b"\xff" * 10)
        await _frames(comm)
        # it still delivers alerts
        from apps.reports.realtime import ALERTS_GROUP
        from channels.layers import get_channel_layer

        await get_channel_layer().group_send(ALERTS_GROUP, {"type": "reports.alert", "kind": "volume"})
        assert (await comm.receive_json_from())["kind"] == "volume"
        await comm.disconnect()

    async_to_sync(run)()


def test_anonymous_and_non_working_users_are_refused(world):
    from django.contrib.auth.models import AnonymousUser

    marketing = UserFactory(role="marketing")

    async def run():
        for user in (AnonymousUser(), marketing):
            comm = WebsocketCommunicator(InboxConsumer.as_asgi(), "/ws/inbox/")
            comm.scope["user"] = user
            connected, code = await comm.connect()
            assert not connected and code == 4403

    async_to_sync(run)()
