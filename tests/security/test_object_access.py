"""Object-level access: an agent cannot reach another team's conversation by id,
in the page or the API (read, messages, reply, assign, status, note, snooze,
tags, priority, spam), and
nothing changes when they try. (Role x URL refusals: test_role_matrix.py.)"""
import pytest
from django.urls import reverse

from apps.inbox.models import Conversation, Message
from tests.factories import ConversationFactory, MessageFactory, QueueFactory, TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_teams(agent):
    conv = ConversationFactory(queue=QueueFactory(team=TeamFactory()), status="open")
    MessageFactory(conversation=conv, text="private to the other team")
    return conv


def test_agent_cannot_reach_another_teams_conversation_by_id_in_the_api(api_client, agent, other_teams):
    api_client.force_authenticate(agent)
    base = f"/api/v1/conversations/{other_teams.pk}"
    listed = api_client.get("/api/v1/conversations/").json()["results"]
    assert other_teams.pk not in [c["id"] for c in listed]
    for method, url, body in [
        ("get", f"{base}/", None), ("get", f"{base}/messages/", None),
        ("post", f"{base}/reply/", {"text": "hi"}), ("post", f"{base}/assign/", {"assignee": agent.pk}),
        ("post", f"{base}/status/", {"status": "resolved"}), ("post", f"{base}/notes/", {"text": "x"}),
        ("post", f"{base}/snooze/", {"until": "2999-01-01T00:00:00Z"}), ("post", f"{base}/tags/", {"add": ["x"]}),
        ("post", f"{base}/priority/", {"priority": 99}), ("post", f"{base}/spam/", {"spam": True}),
    ]:
        resp = getattr(api_client, method)(url, body, format="json")
        assert resp.status_code == 404, (method, url, resp.status_code)
        assert resp.json() == {"detail": "No conversation with that id."} or "detail" in resp.json()
        assert "private to the other team" not in resp.content.decode()
    other_teams.refresh_from_db()
    assert other_teams.status == "open" and other_teams.assignee is None
    assert other_teams.snoozed_until is None and not other_teams.tags.exists() and not other_teams.is_spam
    assert other_teams.priority == 50
    assert not Message.objects.filter(conversation=other_teams, direction="out").exists()


def test_agent_cannot_reach_another_teams_conversation_by_id_in_the_pages(client, agent, other_teams):
    client.force_login(agent)
    assert client.get(reverse("inbox:detail", args=[other_teams.pk])).status_code == 404
    assert "private to the other team" not in client.get(reverse("inbox:list")).content.decode()
    for name, data in [("reply", {"text": "hi"}), ("status", {"status": "resolved"}),
                       ("assign", {"assignee": agent.pk}), ("note", {"text": "x"}), ("snooze", {"preset": "1h"}),
                       ("tags", {"tags": "x"}), ("priority", {"priority_bucket": 0}), ("spam", {"spam": "1"})]:
        resp = client.post(reverse(f"inbox:{name}", args=[other_teams.pk]), data)
        assert resp.status_code == 404, name
    conv = Conversation.objects.get(pk=other_teams.pk)
    assert conv.status == "open" and conv.assignee is None and not conv.notes.exists()
    assert conv.snoozed_until is None and not conv.tags.exists() and not conv.is_spam and conv.priority_bucket == 2
