"""The fan-out of inbox pushes kept cheap (docs/performance-history.md, the live inbox under
a team): an assignee who hears the team's group is not told again through their own
group, a page that asks for it gets one frame per group message carrying its changes,
no `conversation_updated` beside another change of the same conversation, and the
team scoping holds."""
import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from apps.inbox import services
from apps.inbox.consumers import InboxConsumer
from apps.inbox.realtime import INBOX_GROUP, UNROUTED_GROUP, conversation_groups, inbox_push_each, team_group, \
    user_group
from tests.factories import ConversationFactory, QueueFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("local_channel_layers")]


@pytest.fixture
def world(db):
    team_a, team_b = TeamFactory(name="A"), TeamFactory(name="B")
    agent_a, agent_b = UserFactory(role="agent"), UserFactory(role="agent")
    team_a.members.add(agent_a)
    team_b.members.add(agent_b)
    lead_a, lead_b = UserFactory(role="supervisor"), UserFactory(role="supervisor")
    team_a.leads.add(lead_a)
    team_b.leads.add(lead_b)
    team_a.members.add(lead_b)  # a member of A but leads B: a supervisor hears only the teams they lead
    admin = UserFactory(role="admin")
    queue_a, queue_b = QueueFactory(team=team_a), QueueFactory(team=team_b)
    return dict(team_a=team_a, team_b=team_b, agent_a=agent_a, agent_b=agent_b, lead_a=lead_a, lead_b=lead_b,
                admin=admin, queue_a=queue_a, queue_b=queue_b)


def test_the_assignee_group_only_when_the_team_group_does_not_reach_them(world):
    w = world
    cases = {  # (queue, assignee) -> is the assignee's own group told?
        "agent in the team": (w["queue_a"], w["agent_a"], False),
        "agent of another team": (w["queue_a"], w["agent_b"], True),
        "lead of the team": (w["queue_a"], w["lead_a"], False),
        "supervisor member, not lead": (w["queue_a"], w["lead_b"], True),
        "admin": (w["queue_a"], w["admin"], False),
        "unrouted, supervisor": (None, w["lead_a"], False),
        "unrouted, agent": (None, w["agent_a"], True),
        "unassigned": (w["queue_a"], None, False),
    }
    ids = {name: ConversationFactory(queue=queue, assignee=assignee).pk for name, (queue, assignee, _) in cases.items()}
    groups = conversation_groups(ids.values())
    for name, (queue, assignee, told) in cases.items():
        base = [INBOX_GROUP, team_group(w["team_a"].pk) if queue else UNROUTED_GROUP]
        assert groups[ids[name]] == base + ([user_group(assignee.pk)] if told else []), name


def test_no_second_message_to_the_assignee_of_the_team(world, monkeypatch):
    """One group message per group, none to the user group of an assignee in the team."""
    from apps.inbox import realtime

    w = world
    conv = ConversationFactory(queue=w["queue_a"], assignee=w["agent_a"])
    elsewhere = ConversationFactory(queue=w["queue_a"], assignee=w["agent_b"])
    sent = []
    monkeypatch.setattr(realtime, "_send", lambda layer, sends: sent.extend(sends))
    inbox_push_each([("assigned", conv.pk, {"assignee_id": w["agent_a"].pk}), ("conversation_updated", conv.pk, {}),
                     ("assigned", elsewhere.pk, {"assignee_id": w["agent_b"].pk})])
    groups = [group for group, _ in sent]
    assert sorted(groups) == sorted([INBOX_GROUP, team_group(w["team_a"].pk), user_group(w["agent_b"].pk)])
    team_message = dict(sent)[team_group(w["team_a"].pk)]
    # no conversation_updated beside the assigned of the same conversation
    assert [(e["kind"], e["conversation_id"]) for e in team_message["events"]] == [
        ("assigned", conv.pk), ("assigned", elsewhere.pk)]


async def _connect(user, batch=True):
    comm = WebsocketCommunicator(InboxConsumer.as_asgi(), "/ws/inbox/?batch=1" if batch else "/ws/inbox/")
    comm.scope["user"] = user
    connected, _ = await comm.connect()
    assert connected
    assert (await comm.receive_json_from())["kind"] == "hello"
    return comm


async def _frames(comm, timeout=0.3) -> list[dict]:
    out = []
    while not await comm.receive_nothing(timeout=timeout):
        out.append(await comm.receive_json_from())
    return out


def test_one_frame_per_group_message_and_nothing_for_another_team(world):
    w = world
    c1, c2 = (ConversationFactory(queue=w["queue_a"]).pk for _ in range(2))
    b1 = ConversationFactory(queue=w["queue_b"]).pk

    async def run():
        new, old = await _connect(w["agent_a"]), await _connect(w["lead_a"], batch=False)
        other = await _connect(w["agent_b"])
        admin = await _connect(w["admin"])
        await database_sync_to_async(inbox_push_each)([
            ("priority_changed", c1, {"priority_bucket": 0}), ("assigned", c2, {"assignee_id": w["agent_a"].pk}),
            ("conversation_updated", c2, {}), ("conversation_updated", c1, {})])
        got = [await _frames(comm) for comm in (new, old, other, admin)]
        for comm in (new, old, other, admin):
            await comm.disconnect()
        return got

    new, old, other, admin = async_to_sync(run)()
    changes = [{"kind": "priority_changed", "conversation_id": c1, "priority_bucket": 0},
               {"kind": "assigned", "conversation_id": c2, "assignee_id": w["agent_a"].pk}]
    # the assignee (in team A, so also in user.<id>) gets the batch once, as one frame
    assert new == [{"kind": "events", "events": changes}]
    assert old == changes  # a page from before the deploy: one frame per change, as before
    assert admin == [{"kind": "events", "events": changes}]
    assert other == []  # team B hears nothing of team A
    assert b1  # (B's own conversation: untouched)


def test_the_assignee_in_the_team_hears_an_assignment_once_and_out_of_team_assignee_still_hears(world):
    w = world
    conv_a = ConversationFactory(queue=w["queue_a"], status="open")

    async def run():
        a, b = await _connect(w["agent_a"]), await _connect(w["agent_b"])
        await database_sync_to_async(services.conversation_assign)(conversation=conv_a, assignee=w["agent_a"],
                                                                   actor=w["admin"])
        got_a = await _frames(a)
        # given to B's agent: they may see it now, and hear of it through their own group
        await database_sync_to_async(services.conversation_assign)(conversation=conv_a, assignee=w["agent_b"],
                                                                   actor=w["admin"])
        await database_sync_to_async(services.note_create)(conversation=conv_a, author=w["admin"], text="fyi")
        got_b = await _frames(b)
        await a.disconnect()
        await b.disconnect()
        return got_a, got_b

    got_a, got_b = async_to_sync(run)()
    about = [e for e in got_a if e.get("conversation_id") == conv_a.pk and not e.get("notification_id")]
    assert [e["kind"] for e in about] == ["assigned"]
    kinds_b = [e["kind"] for e in got_b if e.get("conversation_id") == conv_a.pk and not e.get("notification_id")]
    assert kinds_b.count("assigned") == 1 and kinds_b.count("note_added") == 1


def test_a_push_reaches_every_socket_of_the_team_without_a_thread_hop_each(world, monkeypatch):
    """channels closes stale database connections through a thread hop before every message
    it hands a consumer; a push touches no database, so the team's sockets get it without one
    (what a browser's own frame does still goes through it)."""
    import channels.consumer

    hops = []
    real = channels.consumer.aclose_old_connections

    async def counted():
        hops.append(1)
        await real()

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)
    w = world
    more = [UserFactory(role="agent") for _ in range(3)]
    w["team_a"].members.add(*more)
    c1, c2 = (ConversationFactory(queue=w["queue_a"]).pk for _ in range(2))

    async def run():
        socks = [await _connect(user) for user in [w["agent_a"], *more]]
        other = await _connect(w["agent_b"])
        hops.clear()
        await database_sync_to_async(inbox_push_each)([("priority_changed", c1, {"priority_bucket": 0}),
                                                       ("priority_changed", c2, {"priority_bucket": 1})])
        got = [await _frames(comm) for comm in socks]
        pushed_hops = len(hops)
        await socks[0].send_json_to({"action": "view", "conversation_id": c1})  # a frame from the browser
        presence = await _frames(socks[1])
        got_other = await _frames(other)
        for comm in [*socks, other]:
            await comm.disconnect()
        return got, pushed_hops, presence, got_other

    got, pushed_hops, presence, got_other = async_to_sync(run)()
    changes = [{"kind": "priority_changed", "conversation_id": c1, "priority_bucket": 0},
               {"kind": "priority_changed", "conversation_id": c2, "priority_bucket": 1}]
    assert got == [[{"kind": "events", "events": changes}]] * 4  # every agent of the team, the same frame
    assert pushed_hops == 0
    # the browser's "view" went through channels' dispatch as before: teammates see who views it
    assert [(e["kind"], e["conversation_id"]) for e in presence] == [("presence", c1)]
    assert got_other == []  # and team B still hears nothing of team A


def test_a_change_heard_through_two_groups_is_shown_once_after_many_changes(world):
    """The repeat check remembers the last 500 changes: a change arriving a second time through
    another group is dropped however many came before it; the page gets every other change."""
    from channels.layers import get_channel_layer

    w = world
    conv = ConversationFactory(queue=w["queue_a"]).pk

    async def run():
        admin = await _connect(w["admin"], batch=False)
        layer = get_channel_layer()
        for n in range(600):
            await layer.group_send(INBOX_GROUP, {"type": "inbox.event", "kind": "priority_changed",
                                                 "conversation_id": conv, "priority_bucket": n % 4,
                                                 "eid": f"e{n}"})
            if n % 50 == 49:  # the latest change again, through the admin's own group
                await layer.group_send(user_group(w["admin"].pk), {"type": "inbox.event", "kind": "priority_changed",
                                                                   "conversation_id": conv,
                                                                   "priority_bucket": n % 4, "eid": f"e{n}"})
        got = await _frames(admin, timeout=0.5)
        await admin.disconnect()
        return got

    got = async_to_sync(run)()
    assert len(got) == 600
    assert [e["priority_bucket"] for e in got] == [n % 4 for n in range(600)]
    assert all("eid" not in e and "type" not in e for e in got)
