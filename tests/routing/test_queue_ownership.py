"""Queues belong to teams (docs/roles.md, Ownership): a supervisor reads and changes
the queues of the teams they lead; another team's queue is a 404, cannot be taken
over by moving it, gets no second default, is not deleted while in use, and
every queue write is audited."""
import pytest
from django.db import IntegrityError, transaction

from apps.accounts.models import AuditEntry
from apps.inbox.models import Conversation, Queue
from apps.routing.models import SlaPolicy
from tests.factories import ConversationFactory, QueueFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_queue(db):
    queue = QueueFactory(team=TeamFactory(name="Billing"), name="Billing", is_default=True)
    SlaPolicy.objects.create(name="billing sla", queue=queue, first_response_minutes=30)
    return queue


@pytest.fixture
def other_conv(other_queue):
    return ConversationFactory(queue=other_queue, status="open")


@pytest.fixture
def as_supervisor(api_client, supervisor):
    api_client.force_authenticate(supervisor)
    return api_client


def test_supervisor_cannot_take_another_teams_queue_and_read_its_conversations(
        as_supervisor, team, other_queue, other_conv):
    resp = as_supervisor.patch(f"/api/v1/queues/{other_queue.pk}/", {"team": team.pk}, format="json")
    assert resp.status_code == 404
    other_queue.refresh_from_db()
    assert other_queue.team.name == "Billing"
    assert as_supervisor.get(f"/api/v1/conversations/{other_conv.pk}/").status_code == 404
    assert as_supervisor.get(f"/api/v1/queues/{other_queue.pk}/").status_code == 404
    assert other_queue.pk not in [q["id"] for q in as_supervisor.get("/api/v1/queues/").json()]


def test_supervisor_cannot_move_own_queue_to_a_team_they_do_not_lead(as_supervisor, queue, other_queue):
    resp = as_supervisor.patch(f"/api/v1/queues/{queue.pk}/", {"team": other_queue.team_id}, format="json")
    assert resp.status_code == 400 and "lead" in resp.json()["detail"]
    queue.refresh_from_db()
    assert queue.team_id != other_queue.team_id
    assert not AuditEntry.objects.filter(action__startswith="queue.").exists()


def test_supervisor_cannot_create_a_queue_in_another_team(as_supervisor, other_queue):
    resp = as_supervisor.post("/api/v1/queues/", {"name": "Mine now", "team": other_queue.team_id,
                                                 "is_default": False}, format="json")
    assert resp.status_code == 400
    assert not Queue.objects.filter(name="Mine now").exists()


def test_one_default_queue_per_team_in_the_api_and_the_database(as_supervisor, team, queue):
    resp = as_supervisor.post("/api/v1/queues/", {"name": "Second", "team": team.pk, "is_default": True},
                              format="json")
    assert resp.status_code == 400 and "default" in str(resp.json()["detail"])
    assert Queue.objects.filter(team=team, is_default=True).count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        QueueFactory(team=team, is_default=True)
    # a non-default second queue is fine; making it the default is refused while the first one is
    resp = as_supervisor.post("/api/v1/queues/", {"name": "Second", "team": team.pk}, format="json")
    assert resp.status_code == 201
    resp = as_supervisor.patch(f"/api/v1/queues/{resp.json()['id']}/", {"is_default": True}, format="json")
    assert resp.status_code == 400


def test_a_queue_with_conversations_is_not_deleted(as_supervisor, queue):
    conv = ConversationFactory(queue=queue, status="open")
    SlaPolicy.objects.create(name="sla", queue=queue, first_response_minutes=30)
    resp = as_supervisor.delete(f"/api/v1/queues/{queue.pk}/")
    assert resp.status_code == 409 and "conversations" in resp.json()["detail"]
    assert Queue.objects.filter(pk=queue.pk).exists() and SlaPolicy.objects.filter(queue=queue).exists()
    assert Conversation.objects.get(pk=conv.pk).queue_id == queue.pk


def test_supervisor_cannot_delete_another_teams_queue(as_supervisor, other_queue):
    assert as_supervisor.delete(f"/api/v1/queues/{other_queue.pk}/").status_code == 404
    assert Queue.objects.filter(pk=other_queue.pk).exists()
    assert SlaPolicy.objects.filter(queue=other_queue).exists()


def test_every_queue_write_is_audited(as_supervisor, supervisor, team):
    resp = as_supervisor.post("/api/v1/queues/", {"name": "Escalations", "team": team.pk}, format="json")
    assert resp.status_code == 201
    pk = resp.json()["id"]
    assert as_supervisor.patch(f"/api/v1/queues/{pk}/", {"assignment_mode": "round_robin"},
                               format="json").status_code == 200
    assert as_supervisor.delete(f"/api/v1/queues/{pk}/").status_code == 204
    rows = list(AuditEntry.objects.filter(action__startswith="queue.").order_by("pk"))
    assert [r.action for r in rows] == ["queue.created", "queue.updated", "queue.deleted"]
    assert all(r.actor_id == supervisor.pk for r in rows)
    assert rows[1].data["changed"] == {"assignment_mode": "round_robin"}


def test_agent_sees_only_their_teams_queues_and_admin_all(api_client, agent, queue, other_queue):
    api_client.force_authenticate(agent)
    assert [q["id"] for q in api_client.get("/api/v1/queues/").json()] == [queue.pk]
    assert api_client.get(f"/api/v1/queues/{other_queue.pk}/").status_code == 404
    api_client.force_authenticate(UserFactory(role="admin"))
    assert {q["id"] for q in api_client.get("/api/v1/queues/").json()} == {queue.pk, other_queue.pk}
    resp = api_client.patch(f"/api/v1/queues/{other_queue.pk}/", {"name": "Billing 2"}, format="json")
    assert resp.status_code == 200
