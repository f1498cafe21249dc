"""The accounts API: users and capacity, teams and members, bulk reassignment, workload moves."""
import pytest

from apps.accounts.models import AuditEntry
from apps.inbox.models import ConversationEvent
from tests.factories import ConversationFactory, QueueFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_users_list_shows_presence_and_capacity_no_email(api_client, agent, supervisor):
    api_client.force_authenticate(agent)
    users = {u["username"]: u for u in api_client.get("/api/v1/users/").json()}
    assert users[agent.username]["presence"] == "online" and users[agent.username]["capacity"] == 10
    assert "email" not in users[agent.username] and "password" not in users[agent.username]


def test_supervisor_sets_capacity_of_own_agent_only(api_client, supervisor, agent):
    api_client.force_authenticate(supervisor)
    resp = api_client.post(f"/api/v1/users/{agent.pk}/capacity/", {"capacity": 3,
                                                                    "channel_capacity": {"email": 8}}, format="json")
    assert resp.status_code == 200 and resp.json()["channel_capacity"] == {"email": 8}
    outsider = UserFactory(role="agent")
    TeamFactory().members.add(outsider)
    assert api_client.post(f"/api/v1/users/{outsider.pk}/capacity/", {"capacity": 3},
                           format="json").status_code == 404  # another team's agent: as on the page
    api_client.force_authenticate(agent)
    assert api_client.post(f"/api/v1/users/{agent.pk}/capacity/", {"capacity": 99},
                           format="json").status_code == 403


def test_bulk_assign_api_by_ids_and_by_filter(api_client, supervisor, agent, queue, twitter_account):
    convs = [ConversationFactory(channel_account=twitter_account, queue=queue) for _ in range(3)]
    api_client.force_authenticate(supervisor)
    resp = api_client.post("/api/v1/conversations/bulk-assign/", {
        "ids": [convs[0].pk, convs[1].pk], "to": {"agent": agent.pk}, "reason": "cover"}, format="json")
    assert resp.status_code == 200 and resp.json()["moved"] == 2
    other_q = QueueFactory(team=queue.team, name="Later")
    resp = api_client.post("/api/v1/conversations/bulk-assign/", {
        "filter": {"assignee": "none"}, "to": {"queue": other_q.pk}, "reason": "park"}, format="json")
    assert resp.json() == {"matched": 1, "moved": 1, "unchanged": 0, "not_visible": 0}
    assert ConversationEvent.objects.get(conversation=convs[2], kind="moved").data["reason"] == "park"
    bad = api_client.post("/api/v1/conversations/bulk-assign/", {"ids": [1], "to": {}}, format="json")
    assert bad.status_code == 400 and "Pick one target" in bad.json()["detail"]
    both = api_client.post("/api/v1/conversations/bulk-assign/", {"ids": [1], "filter": {}, "to": {"queue": 1}},
                           format="json")
    assert both.status_code == 400
    api_client.force_authenticate(agent)
    assert api_client.post("/api/v1/conversations/bulk-assign/", {"ids": [convs[0].pk], "to": {"agent": agent.pk}},
                           format="json").status_code == 403


def test_workload_api_moves_everything_open(api_client, supervisor, agent, queue, twitter_account):
    convs = [ConversationFactory(channel_account=twitter_account, queue=queue, assignee=agent) for _ in range(2)]
    api_client.force_authenticate(supervisor)
    resp = api_client.post(f"/api/v1/users/{agent.pk}/workload/", {"to": {"agent": supervisor.pk},
                                                                   "reason": "shift over", "go_offline": True},
                           format="json")
    assert resp.status_code == 200 and resp.json()["moved"] == 2
    assert {c.assignee_id for c in type(convs[0]).objects.filter(pk__in=[c.pk for c in convs])} == {supervisor.pk}
    agent.refresh_from_db()
    assert agent.presence == "offline"


def test_teams_api_members_by_lead_creation_by_admin(api_client, supervisor, agent, team, admin_user):
    newbie = UserFactory(role="agent")
    api_client.force_authenticate(supervisor)
    resp = api_client.post(f"/api/v1/teams/{team.pk}/members/", {"members": [supervisor.pk, agent.pk, newbie.pk]},
                           format="json")
    assert resp.status_code == 200 and newbie.pk in resp.json()["members"]
    assert api_client.post(f"/api/v1/teams/{team.pk}/members/", {"members": [], "leads": [newbie.pk]},
                           format="json").status_code == 403
    assert api_client.post("/api/v1/teams/", {"name": "X"}, format="json").status_code == 403
    api_client.force_authenticate(admin_user)
    created = api_client.post("/api/v1/teams/", {"name": "Billing", "time_zone": "Europe/Berlin"}, format="json")
    assert created.status_code == 201
    assert AuditEntry.objects.filter(action="team.created", target="Billing").exists()
