"""Teams do not leak into each other through the API (docs/roles.md, Ownership):
customers, assignment, team members, SLA policies and rules on other teams'
queues, bulk moves with a bad filter."""
import pytest

from apps.accounts.models import AuditEntry
from apps.inbox.models import Conversation
from apps.routing.models import RoutingRule, SlaPolicy
from tests.factories import ConversationFactory, QueueFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_team(db):
    return TeamFactory(name="Billing")


@pytest.fixture
def other_queue(other_team):
    return QueueFactory(team=other_team, name="Billing")


@pytest.fixture
def other_agent(other_team):
    user = UserFactory(role="agent", username="billing_agent")
    other_team.members.add(user)
    return user


@pytest.fixture
def own_conv(queue):
    return ConversationFactory(queue=queue, status="open")


@pytest.fixture
def other_conv(other_queue):
    return ConversationFactory(queue=other_queue, status="open")


def as_user(api_client, user):
    api_client.force_authenticate(user)
    return api_client


# --- customers -----------------------------------------------------------------------------------------

def test_customers_are_those_of_conversations_the_user_sees(api_client, agent, supervisor, own_conv, other_conv):
    unrouted = ConversationFactory(queue=None, status="new")
    c = as_user(api_client, agent)
    assert [x["id"] for x in c.get("/api/v1/customers/").json()["results"]] == [own_conv.customer_id]
    assert c.get(f"/api/v1/customers/{other_conv.customer_id}/").status_code == 404
    assert c.get(f"/api/v1/customers/{unrouted.customer_id}/").status_code == 404
    c = as_user(api_client, supervisor)  # leads the team: its customers and the unrouted ones
    assert {x["id"] for x in c.get("/api/v1/customers/").json()["results"]} == {
        own_conv.customer_id, unrouted.customer_id}
    c = as_user(api_client, UserFactory(role="admin"))
    assert len(c.get("/api/v1/customers/").json()["results"]) == 3
    assert as_user(api_client, UserFactory(role="marketing")).get("/api/v1/customers/").status_code == 403


# --- assignment --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["marketing", "other_agent", "inactive"])
def test_assign_api_takes_only_people_of_the_conversations_team(api_client, supervisor, own_conv, other_agent, who):
    assignee = {"marketing": lambda: UserFactory(role="marketing"), "other_agent": lambda: other_agent,
                "inactive": lambda: UserFactory(role="agent", is_active=False)}[who]()
    resp = as_user(api_client, supervisor).post(f"/api/v1/conversations/{own_conv.pk}/assign/",
                                                {"assignee": assignee.pk}, format="json")
    assert resp.status_code == 400 and "team" in resp.json()["detail"]
    assert Conversation.objects.get(pk=own_conv.pk).assignee_id is None
    # and the would-be assignee cannot read it
    assert as_user(api_client, other_agent).get(f"/api/v1/conversations/{own_conv.pk}/").status_code == 404


def test_assign_api_takes_a_member_of_the_team(api_client, supervisor, agent, own_conv):
    resp = as_user(api_client, supervisor).post(f"/api/v1/conversations/{own_conv.pk}/assign/",
                                                {"assignee": agent.pk}, format="json")
    assert resp.status_code == 200 and resp.json()["assignee"] == agent.pk


def test_assign_page_applies_the_same_rule(client, supervisor, own_conv, other_agent):
    client.force_login(supervisor)
    client.post(f"/inbox/c/{own_conv.pk}/assign/", {"assignee": other_agent.pk})
    assert Conversation.objects.get(pk=own_conv.pk).assignee_id is None
    page = client.get(f"/inbox/c/{own_conv.pk}/").content.decode()
    assert "billing_agent" not in page


# --- team members --------------------------------------------------------------------------------------------

def test_a_lead_cannot_take_another_teams_agent(api_client, supervisor, agent, team, other_agent, other_team):
    resp = as_user(api_client, supervisor).post(f"/api/v1/teams/{team.pk}/members/",
                                                {"members": [agent.pk, supervisor.pk, other_agent.pk]}, format="json")
    assert resp.status_code == 400 and "admin" in resp.json()["detail"]
    assert set(team.members.all()) == {agent, supervisor}
    assert set(other_team.members.all()) == {other_agent}
    # an admin may move people between teams; a lead may add someone of no team
    loner = UserFactory(role="agent")
    assert api_client.post(f"/api/v1/teams/{team.pk}/members/", {"members": [agent.pk, supervisor.pk, loner.pk]},
                           format="json").status_code == 200
    assert as_user(api_client, UserFactory(role="admin")).post(
        f"/api/v1/teams/{team.pk}/members/", {"members": [agent.pk, supervisor.pk, other_agent.pk]},
        format="json").status_code == 200


def test_an_unknown_member_id_is_a_400_and_changes_nothing(api_client, supervisor, agent, team):
    resp = as_user(api_client, supervisor).post(f"/api/v1/teams/{team.pk}/members/",
                                                {"members": [agent.pk, supervisor.pk, 999999]}, format="json")
    assert resp.status_code == 400 and "999999" in resp.json()["detail"]
    assert set(team.members.all()) == {agent, supervisor}
    assert not AuditEntry.objects.filter(action="team.members_changed").exists()


# --- SLA policies and rules on other teams' queues --------------------------------------------------------------

def test_sla_policies_of_other_teams_queues_are_not_the_supervisors(api_client, supervisor, queue, other_queue):
    theirs = SlaPolicy.objects.create(name="theirs", queue=other_queue, first_response_minutes=30)
    c = as_user(api_client, supervisor)
    resp = c.post("/api/v1/sla-policies/", {"name": "mine now", "queue": other_queue.pk,
                                            "first_response_minutes": 1}, format="json")
    assert resp.status_code == 400 and not SlaPolicy.objects.filter(name="mine now").exists()
    assert c.get(f"/api/v1/sla-policies/{theirs.pk}/").status_code == 404
    assert c.patch(f"/api/v1/sla-policies/{theirs.pk}/", {"first_response_minutes": 1},
                   format="json").status_code == 404
    assert c.delete(f"/api/v1/sla-policies/{theirs.pk}/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.first_response_minutes == 30
    # own queue: fine, and audited
    resp = c.post("/api/v1/sla-policies/", {"name": "ours", "queue": queue.pk, "first_response_minutes": 5},
                  format="json")
    assert resp.status_code == 201 and AuditEntry.objects.filter(action="sla.created").exists()
    # moving one's own policy onto the other team's queue is refused too
    resp = c.patch(f"/api/v1/sla-policies/{resp.json()['id']}/", {"queue": other_queue.pk}, format="json")
    assert resp.status_code == 400


def test_rules_routing_to_other_teams_are_not_the_supervisors(api_client, client, supervisor, queue, other_queue):
    theirs = RoutingRule.objects.create(name="to billing", set_queue=other_queue, keywords=["refund"])
    c = as_user(api_client, supervisor)
    assert c.post("/api/v1/rules/", {"name": "steal", "set_queue": other_queue.pk},
                  format="json").status_code == 400
    assert c.patch(f"/api/v1/rules/{theirs.pk}/", {"set_queue": queue.pk}, format="json").status_code == 404
    assert c.delete(f"/api/v1/rules/{theirs.pk}/").status_code == 404
    client.force_login(supervisor)
    assert client.get(f"/routing/rules/{theirs.pk}/").status_code == 404
    assert client.post(f"/routing/rules/{theirs.pk}/delete/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.set_queue_id == other_queue.pk
    assert c.get(f"/api/v1/rules/{theirs.pk}/").status_code == 200  # rules are read by all who work


# --- bulk assign with a bad filter ----------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [{"stauts": "open"}, {"view": "everything"}, {"sentiment": "angry"},
                                 {"status": "opne"}, {"priority": "urgent"}, {"queue": "abc"},
                                 {"date_from": "yesterday"}])
def test_bulk_assign_refuses_a_filter_it_does_not_understand(api_client, supervisor, agent, own_conv, bad):
    resp = as_user(api_client, supervisor).post("/api/v1/conversations/bulk-assign/", {
        "filter": bad, "to": {"agent": agent.pk}, "reason": "x"}, format="json")
    assert resp.status_code == 400, resp.content
    assert str(next(iter(bad))) in resp.json()["detail"]
    assert Conversation.objects.get(pk=own_conv.pk).assignee_id is None


def test_bulk_assign_by_filter_moves_only_what_the_user_sees(api_client, supervisor, agent, own_conv, other_conv):
    resp = as_user(api_client, supervisor).post("/api/v1/conversations/bulk-assign/", {
        "filter": {"status": "open"}, "to": {"agent": agent.pk}, "reason": "x"}, format="json")
    assert resp.status_code == 200 and resp.json()["moved"] == 1
    assert Conversation.objects.get(pk=own_conv.pk).assignee_id == agent.pk
    assert Conversation.objects.get(pk=other_conv.pk).assignee_id is None


def test_rules_reorder_and_auto_reply_stay_within_the_team(api_client, supervisor, queue, other_queue, other_team):
    from apps.inbox.models import CannedResponse

    theirs = RoutingRule.objects.create(name="to billing", set_queue=other_queue, position=10)
    mine = RoutingRule.objects.create(name="mine", set_queue=queue, position=20)
    c = as_user(api_client, supervisor)
    resp = c.post("/api/v1/rules/reorder/", {"order": [mine.pk, theirs.pk]}, format="json")
    assert resp.status_code == 400
    theirs.refresh_from_db()
    assert theirs.position == 10
    their_words = CannedResponse.objects.create(shortcut="b", title="b", text="billing only", team=other_team)
    resp = c.post("/api/v1/rules/", {"name": "borrow", "auto_reply": their_words.pk}, format="json")
    assert resp.status_code == 400 and not RoutingRule.objects.filter(name="borrow").exists()
