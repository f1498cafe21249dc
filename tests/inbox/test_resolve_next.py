"""Resolve moves on to the next conversation: the one after it in the list the agent came from,
else the top of their work; never one they may not open."""
import pytest

from apps.inbox.models import Conversation

from ..factories import ConversationFactory, MessageFactory, QueueFactory, TeamFactory

pytestmark = pytest.mark.django_db


def conversation(queue, assignee=None):
    c = ConversationFactory(queue=queue, assignee=assignee, status="open")
    MessageFactory(conversation=c, channel_account=c.channel_account)
    return c


def resolve(client, c, next_id=""):
    return client.post(f"/inbox/c/{c.pk}/status/", {"status": "resolved", "next": "next", "next_id": next_id})


def test_resolve_goes_to_the_next_conversation_of_the_list_the_agent_came_from(client, agent, queue):
    first, second, third = conversation(queue, agent), conversation(queue, agent), conversation(queue)
    client.force_login(agent)
    response = resolve(client, first, next_id=str(third.pk))
    assert response.status_code == 302 and response["Location"] == f"/inbox/c/{third.pk}/"
    assert Conversation.objects.get(pk=first.pk).status == "resolved"
    # without a list (opened from a link): the top of the agent's own work
    response = resolve(client, second)
    assert response["Location"] == f"/inbox/c/{first.pk}/" or response["Location"] == f"/inbox/c/{third.pk}/"
    assert response["Location"] != f"/inbox/c/{second.pk}/"


def test_a_next_id_of_another_team_or_nonsense_is_not_followed(client, agent, queue):
    mine = conversation(queue, agent)
    other = conversation(queue, agent)
    foreign = conversation(QueueFactory(team=TeamFactory()))
    client.force_login(agent)
    for bad in (str(foreign.pk), "abc", "9" * 30, str(mine.pk), "<script>"):
        mine.status = "open"
        mine.save()
        response = resolve(client, mine, next_id=bad)
        assert response["Location"] == f"/inbox/c/{other.pk}/", bad


def test_when_nothing_is_left_resolve_returns_to_the_list_and_says_so(client, agent, queue):
    last = conversation(queue, agent)
    client.force_login(agent)
    response = resolve(client, last)
    assert response["Location"] == "/inbox/"
    assert "Nothing else is waiting for you." in client.get("/inbox/").content.decode()
