"""The inbox websocket tells each user only about what they may see (docs/roles.md,
Ownership): team B's agent hears nothing of team A's notes, tags, presence and
typing; the unrouted go to supervisors and admins; an assignee hears about their
conversation once."""
import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from apps.inbox import services
from apps.inbox.consumers import InboxConsumer
from tests.factories import ConversationFactory, QueueFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("local_channel_layers")]


@pytest.fixture
def world(db):
    team_a, team_b = TeamFactory(name="A"), TeamFactory(name="B")
    agent_a, agent_b = UserFactory(role="agent"), UserFactory(role="agent")
    team_a.members.add(agent_a)
    team_b.members.add(agent_b)
    lead_a = UserFactory(role="supervisor")
    team_a.members.add(lead_a)
    team_a.leads.add(lead_a)
    admin = UserFactory(role="admin")
    conv_a = ConversationFactory(queue=QueueFactory(team=team_a), status="open")
    conv_b = ConversationFactory(queue=QueueFactory(team=team_b), status="open")
    unrouted = ConversationFactory(queue=None, status="new")
    return dict(agent_a=agent_a, agent_b=agent_b, lead_a=lead_a, admin=admin, conv_a=conv_a, conv_b=conv_b,
                unrouted=unrouted)


async def _connect(user):
    comm = WebsocketCommunicator(InboxConsumer.as_asgi(), "/ws/inbox/")
    comm.scope["user"] = user
    connected, _ = await comm.connect()
    assert connected
    assert (await comm.receive_json_from())["kind"] == "hello"
    return comm


async def _events(comm, timeout=0.3) -> list[dict]:
    """Everything the browser was sent until it goes quiet."""
    out = []
    while not await comm.receive_nothing(timeout=timeout):  # (a receive that times out kills the consumer)
        out.append(await comm.receive_json_from())
    return out


def _about(events, conversation) -> list[str]:
    return [e["kind"] for e in events if e.get("conversation_id") == conversation.pk]


def test_team_b_hears_nothing_of_team_a_and_hears_its_own(world):
    w = world

    async def run():
        socks = {name: await _connect(w[name]) for name in ("agent_a", "agent_b", "lead_a", "admin")}
        await database_sync_to_async(services.note_create)(conversation=w["conv_a"], author=w["agent_a"],
                                                           text="refund approved")
        await database_sync_to_async(services.conversation_tags_change)(conversation=w["conv_a"], add=["vip"],
                                                                        actor=w["agent_a"])
        await database_sync_to_async(services.conversation_tags_change)(conversation=w["conv_b"], add=["b"],
                                                                        actor=w["agent_b"])
        await database_sync_to_async(services.conversation_tags_change)(conversation=w["unrouted"], add=["u"],
                                                                        actor=w["admin"])
        # presence and typing: agent A opens conversation A and types
        await socks["agent_a"].send_json_to({"action": "view", "conversation_id": w["conv_a"].pk})
        await socks["agent_a"].send_json_to({"action": "typing", "typing": True})
        got = {name: await _events(comm) for name, comm in socks.items()}
        for comm in socks.values():
            await comm.disconnect()
        return got

    got = async_to_sync(run)()
    # team B's agent: nothing about A's conversation or the unrouted one; B's own tag change, once
    assert _about(got["agent_b"], w["conv_a"]) == []
    assert _about(got["agent_b"], w["unrouted"]) == []
    assert _about(got["agent_b"], w["conv_b"]) == ["tags_changed"]
    # team A's agent: A's note, tags, presence; nothing of B, nothing unrouted
    kinds_a = _about(got["agent_a"], w["conv_a"])
    assert {"note_added", "tags_changed", "presence"} <= set(kinds_a)
    assert _about(got["agent_a"], w["conv_b"]) == [] and _about(got["agent_a"], w["unrouted"]) == []
    # A's lead: A and the unrouted, not B
    assert "presence" in _about(got["lead_a"], w["conv_a"])
    assert _about(got["lead_a"], w["unrouted"]) == ["tags_changed"]
    assert _about(got["lead_a"], w["conv_b"]) == []
    # admin: everything
    assert _about(got["admin"], w["conv_b"]) == ["tags_changed"]
    assert _about(got["admin"], w["unrouted"]) == ["tags_changed"]
    assert "note_added" in _about(got["admin"], w["conv_a"])
    # presence frames name the viewers: B's agent never learns who works on A's customer
    assert not [e for e in got["agent_b"] if e["kind"] == "presence"]


def test_an_assignee_of_another_team_hears_of_their_conversation_once(world):
    w = world

    async def run():
        comm_b = await _connect(w["agent_b"])
        comm_a = await _connect(w["agent_a"])
        # B's agent was given A's conversation by an admin: they see it, so they hear of it
        await database_sync_to_async(services.conversation_assign)(conversation=w["conv_a"], assignee=w["agent_b"],
                                                                   actor=w["admin"])
        await database_sync_to_async(services.note_create)(conversation=w["conv_a"], author=w["admin"], text="fyi")
        # A's agent, assigned A's other conversation, hears of it once (team group + own group)
        await database_sync_to_async(services.conversation_assign)(conversation=w["conv_b"], assignee=None,
                                                                   actor=w["admin"])
        got_b, got_a = await _events(comm_b), await _events(comm_a)
        await comm_a.disconnect()
        await comm_b.disconnect()
        return got_a, got_b

    got_a, got_b = async_to_sync(run)()
    assert _about(got_b, w["conv_a"]).count("note_added") == 1
    assert _about(got_a, w["conv_a"]).count("note_added") == 1
    assert _about(got_a, w["conv_b"]) == []
