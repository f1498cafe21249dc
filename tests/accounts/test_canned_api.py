"""Canned responses through the API: agents read global + their teams', leads edit
their team's, admins the global ones; every change audited."""
import pytest

from apps.accounts.models import AuditEntry
from apps.inbox.models import CannedResponse
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def responses(team):
    other = TeamFactory(name="Billing")
    return {
        "global": CannedResponse.objects.create(shortcut="hello", title="Hello", text="Hi {{ customer.name }}"),
        "mine": CannedResponse.objects.create(shortcut="late", title="Late", text="Sorry", team=team),
        "other": CannedResponse.objects.create(shortcut="refund", title="Refund", text="Refunded", team=other),
    }


def test_agent_reads_global_and_own_team_only_and_cannot_write(api_client, agent, responses, team):
    api_client.force_authenticate(agent)
    shortcuts = {c["shortcut"] for c in api_client.get("/api/v1/canned-responses/").json()}
    assert shortcuts == {"hello", "late"}
    resp = api_client.post("/api/v1/canned-responses/", {"shortcut": "x", "title": "X", "text": "x", "team": team.pk})
    assert resp.status_code == 403 and "detail" in resp.json()


def test_lead_edits_team_response_but_not_global(api_client, supervisor, responses, team):
    api_client.force_authenticate(supervisor)
    resp = api_client.patch(f"/api/v1/canned-responses/{responses['mine'].pk}/", {"text": "Sorry, on it."},
                            format="json")
    assert resp.status_code == 200 and resp.json()["text"] == "Sorry, on it."
    resp = api_client.patch(f"/api/v1/canned-responses/{responses['global'].pk}/", {"text": "Yo"}, format="json")
    assert resp.status_code == 403
    resp = api_client.post("/api/v1/canned-responses/", {"shortcut": "thanks", "title": "Thanks", "text": "Thank you",
                                                         "team": None}, format="json")
    assert resp.status_code == 403  # global: admins only
    resp = api_client.post("/api/v1/canned-responses/", {"shortcut": "late", "title": "Dup", "text": "x",
                                                         "team": team.pk}, format="json")
    assert resp.status_code == 400 and "exists already" in resp.json()["detail"]
    assert api_client.get(f"/api/v1/canned-responses/{responses['other'].pk}/").status_code == 404
    assert AuditEntry.objects.filter(action="canned.updated", actor=supervisor).count() == 1


def test_admin_manages_global(api_client, admin_user, responses):
    api_client.force_authenticate(admin_user)
    resp = api_client.post("/api/v1/canned-responses/", {"shortcut": "thanks", "title": "Thanks",
                                                         "text": "Thank you", "team": None}, format="json")
    assert resp.status_code == 201 and resp.json()["team"] is None
    assert api_client.delete(f"/api/v1/canned-responses/{responses['global'].pk}/").status_code == 204
    assert AuditEntry.objects.filter(action="canned.deleted").exists()
