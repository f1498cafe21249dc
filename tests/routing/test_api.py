"""/api/v1/rules/, /api/v1/sla-policies/, /api/v1/business-hours/: supervisors edit,
agents read, marketing and strangers are refused; errors are JSON {"detail": ...}."""
import pytest

from apps.accounts.models import AuditEntry
from apps.routing.models import BusinessHours, RoutingRule, SlaPolicy
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

RULE = {"name": "Refunds to billing", "keywords": ["refund", "chargeback"], "sentiments": ["negative"],
        "add_tags": ["billing"], "set_priority_bucket": 1}


def login(api_client, user):
    api_client.force_authenticate(user)
    return api_client


def test_supervisor_creates_edits_reorders_and_deletes_rules(api_client, supervisor, queue):
    c = login(api_client, supervisor)
    resp = c.post("/api/v1/rules/", {**RULE, "set_queue": queue.pk}, format="json")
    assert resp.status_code == 201, resp.content
    first = resp.json()
    assert first["keywords"] == ["refund", "chargeback"] and first["set_queue"] == queue.pk
    second = c.post("/api/v1/rules/", {"name": "Spam", "regex": r"free\s+crypto", "disposition": "spam",
                                       "stop": True}, format="json").json()
    assert second["position"] > first["position"]  # new rules go last

    resp = c.patch(f"/api/v1/rules/{first['id']}/", {"is_active": False}, format="json")
    assert resp.status_code == 200 and resp.json()["is_active"] is False

    resp = c.post("/api/v1/rules/reorder/", {"order": [second["id"], first["id"]]}, format="json")
    assert [r["name"] for r in resp.json()] == ["Spam", "Refunds to billing"]

    assert c.delete(f"/api/v1/rules/{second['id']}/").status_code == 204
    assert list(RoutingRule.objects.values_list("name", flat=True)) == ["Refunds to billing"]
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"rule.created", "rule.updated", "rule.reordered", "rule.deleted"} <= actions


def test_bad_regex_is_refused_with_a_json_reason(api_client, supervisor):
    resp = login(api_client, supervisor).post("/api/v1/rules/", {"name": "x", "regex": "(oops"}, format="json")
    assert resp.status_code == 400
    assert "regular expression" in resp.json()["detail"]
    assert not RoutingRule.objects.exists()


def test_field_errors_come_under_detail(api_client, supervisor):
    resp = login(api_client, supervisor).post("/api/v1/rules/", {"name": "x", "sentiments": ["furious"],
                                                                 "priority_boost": 99}, format="json")
    assert resp.status_code == 400
    assert set(resp.json()["detail"]) == {"sentiments", "priority_boost"}


def test_agent_reads_but_cannot_change(api_client, agent):
    RoutingRule.objects.create(name="r")
    c = login(api_client, agent)
    assert c.get("/api/v1/rules/").status_code == 200
    assert c.get("/api/v1/sla-policies/").status_code == 200
    resp = c.post("/api/v1/rules/", RULE, format="json")
    assert resp.status_code == 403 and "supervisors" in resp.json()["detail"]
    assert c.post("/api/v1/sla-policies/", {"name": "p", "first_response_minutes": 5}, format="json").status_code == 403


@pytest.mark.parametrize("url", ["/api/v1/rules/", "/api/v1/sla-policies/", "/api/v1/business-hours/"])
def test_marketing_and_anonymous_are_refused(api_client, marketing_user, url):
    assert api_client.get(url).status_code in (401, 403)
    assert login(api_client, marketing_user).get(url).status_code == 403


def test_sla_policy_crud_and_one_active_per_queue_and_priority(api_client, supervisor, queue):
    c = login(api_client, supervisor)
    body = {"name": "Urgent Twitter", "queue": queue.pk, "priority_bucket": 0, "first_response_minutes": 15,
            "resolution_minutes": 240, "business_hours_only": True}
    created = c.post("/api/v1/sla-policies/", body, format="json")
    assert created.status_code == 201, created.content
    clash = c.post("/api/v1/sla-policies/", {**body, "name": "dup"}, format="json")
    assert clash.status_code == 400 and "exists already" in clash.json()["detail"]
    empty = c.post("/api/v1/sla-policies/", {"name": "nothing"}, format="json")
    assert empty.status_code == 400 and "at least one target" in empty.json()["detail"]
    pid = created.json()["id"]
    assert c.patch(f"/api/v1/sla-policies/{pid}/", {"first_response_minutes": 10},
                   format="json").json()["first_response_minutes"] == 10
    assert c.delete(f"/api/v1/sla-policies/{pid}/").status_code == 204
    assert not SlaPolicy.objects.exists()
    assert AuditEntry.objects.filter(action="sla.updated").exists()


def test_business_hours_for_a_team_its_lead_manages(api_client, supervisor, team):
    c = login(api_client, supervisor)
    body = {"team": team.pk, "time_zone": "Europe/Madrid",
            "schedule": {"mon": [["09:00", "14:00"], ["16:00", "19:00"]], "sat": []},
            "holidays": [{"date": "2026-12-25", "name": "Navidad"}, {"date": "2027-01-06", "name": "Reyes"}]}
    resp = c.post("/api/v1/business-hours/", body, format="json")
    assert resp.status_code == 201, resp.content
    data = resp.json()
    assert data["time_zone"] == "Europe/Madrid"
    assert data["holidays"] == [{"date": "2026-12-25", "name": "Navidad"}, {"date": "2027-01-06", "name": "Reyes"}]

    resp = c.patch(f"/api/v1/business-hours/{data['id']}/", {"holidays": []}, format="json")
    assert resp.status_code == 200 and resp.json()["holidays"] == []

    bad = c.patch(f"/api/v1/business-hours/{data['id']}/", {"schedule": {"mon": [["19:00", "09:00"]]}},
                  format="json")
    assert bad.status_code == 400 and "ends before it starts" in bad.json()["detail"]
    bad_tz = c.patch(f"/api/v1/business-hours/{data['id']}/", {"time_zone": "Mars/Olympus"}, format="json")
    assert bad_tz.status_code == 400 and "Unknown time zone" in bad_tz.json()["detail"]

    other = TeamFactory()
    resp = c.post("/api/v1/business-hours/", {**body, "team": other.pk}, format="json")
    assert resp.status_code == 403  # not a team this supervisor leads
    assert BusinessHours.objects.count() == 1


def test_openapi_schema_lists_the_routing_endpoints(api_client, admin_user):
    schema = login(api_client, admin_user).get("/api/schema/?format=json").json()
    for path in ("/api/v1/rules/", "/api/v1/rules/reorder/", "/api/v1/sla-policies/", "/api/v1/business-hours/"):
        assert path in schema["paths"]


def test_reorder_refuses_duplicates_and_unknown_ids(api_client, supervisor):
    a = RoutingRule.objects.create(name="a")
    c = login(api_client, supervisor)
    dup = c.post("/api/v1/rules/reorder/", {"order": [a.pk, a.pk]}, format="json")
    assert dup.status_code == 400 and "twice" in dup.json()["detail"]
    unknown = c.post("/api/v1/rules/reorder/", {"order": [a.pk, 99999]}, format="json")
    assert unknown.status_code == 400 and "Unknown rule" in unknown.json()["detail"]
    huge = c.post("/api/v1/rules/reorder/", {"order": [2**70]}, format="json")
    assert huge.status_code == 400
