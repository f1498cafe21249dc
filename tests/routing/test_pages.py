"""Supervisor pages for rules, SLA policies and business hours."""
import pytest
from django.urls import reverse

from apps.routing.models import BusinessHours, RoutingRule, SlaPolicy
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sup_client(client, supervisor):
    client.force_login(supervisor)
    return client


def test_nav_links_supervisors_to_routing(sup_client, client, agent):
    html = sup_client.get(reverse("inbox:list")).content.decode()
    assert f'href="{reverse("routing:rules")}"' in html
    client.force_login(agent)
    assert f'href="{reverse("routing:rules")}"' not in client.get(reverse("inbox:list")).content.decode()


@pytest.mark.parametrize("name, args", [("routing:rules", []), ("routing:rule-new", []), ("routing:sla", []),
                                        ("routing:hours", [])])
def test_pages_refuse_agents_and_marketing_and_send_strangers_to_login(client, agent, marketing_user, name, args):
    url = reverse(name, args=args)
    assert client.get(url).status_code == 302
    for user in (agent, marketing_user):
        client.force_login(user)
        assert client.get(url).status_code == 403


def test_create_a_rule_from_the_form_and_see_it_listed(sup_client, queue):
    resp = sup_client.post(reverse("routing:rule-new"), {
        "name": "Angry refunds", "is_active": "on", "keywords": "refund, money back", "sentiments": ["negative"],
        "channels": ["twitter"], "hours": "any", "visibility": "public", "set_queue": queue.pk,
        "set_priority_bucket": "1", "priority_boost": "10", "add_tags": "refund, angry", "disposition": "",
    })
    assert resp.status_code == 302, resp.content.decode()[:2000]
    rule = RoutingRule.objects.get()
    assert rule.keywords == ["refund", "money back"] and rule.add_tags == ["refund", "angry"]
    assert rule.sentiments == ["negative"] and rule.set_queue == queue and rule.set_priority_bucket == 1
    html = sup_client.get(reverse("routing:rules")).content.decode()
    assert "Angry refunds" in html and "words “refund”, “money back”" in html and f"queue {queue.name}" in html


def test_a_bad_regex_shows_the_reason_on_the_form(sup_client):
    resp = sup_client.post(reverse("routing:rule-new"), {"name": "bad", "regex": "(x", "hours": "any",
                                                         "visibility": "any"})
    assert resp.status_code == 200
    assert "The regular expression does not compile" in resp.content.decode()
    assert not RoutingRule.objects.exists()


def test_rule_names_are_escaped(sup_client):
    RoutingRule.objects.create(name="<script>alert(1)</script>")
    html = sup_client.get(reverse("routing:rules")).content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_edit_move_and_delete(sup_client):
    a = RoutingRule.objects.create(name="A", position=10)
    b = RoutingRule.objects.create(name="B", position=20)
    page = sup_client.get(reverse("routing:rule-edit", args=[a.pk])).content.decode()
    assert 'value="A"' in page
    sup_client.post(reverse("routing:rule-move", args=[b.pk, "up"]))
    assert list(RoutingRule.objects.order_by("position").values_list("name", flat=True)) == ["B", "A"]
    resp = sup_client.post(reverse("routing:rule-edit", args=[a.pk]), {"name": "A2", "hours": "any",
                                                                       "visibility": "any", "stop": "on"})
    assert resp.status_code == 302
    a.refresh_from_db()
    assert a.name == "A2" and a.stop and not a.is_active  # unticked box: off
    sup_client.post(reverse("routing:rule-delete", args=[a.pk]))
    assert list(RoutingRule.objects.values_list("name", flat=True)) == ["B"]


def test_sla_policy_page(sup_client, queue):
    resp = sup_client.post(reverse("routing:sla"), {"name": "Twitter 1h", "queue": queue.pk, "priority_bucket": "",
                                                    "first_response_minutes": "60", "resolution_minutes": "1440",
                                                    "is_active": "on"})
    assert resp.status_code == 302
    policy = SlaPolicy.objects.get()
    assert policy.priority_bucket is None and policy.first_response_minutes == 60
    html = sup_client.get(reverse("routing:sla")).content.decode()
    assert "Twitter 1h" in html and "every priority" in html
    dup = sup_client.post(reverse("routing:sla"), {"name": "again", "queue": queue.pk, "priority_bucket": "",
                                                   "first_response_minutes": "5", "is_active": "on"})
    assert "exists already" in dup.content.decode()


def test_business_hours_page_for_the_teams_a_supervisor_leads(sup_client, team):
    other = TeamFactory(name="Night shift")
    listing = sup_client.get(reverse("routing:hours")).content.decode()
    assert reverse("routing:hours-edit", args=[team.pk]) in listing
    assert reverse("routing:hours-edit", args=[other.pk]) not in listing
    assert sup_client.get(reverse("routing:hours-edit", args=[other.pk])).status_code == 403

    resp = sup_client.post(reverse("routing:hours-edit", args=[team.pk]), {
        "time_zone": "Asia/Tokyo", "mon": "09:00-12:00, 13:00-18:00", "tue": "09:00-18:00", "wed": "",
        "thu": "", "fri": "", "sat": "", "sun": "", "holidays": "2027-01-01 New Year\n2027-01-02"})
    assert resp.status_code == 302, resp.content.decode()[:1500]
    hours = BusinessHours.objects.get(team=team)
    assert hours.time_zone == "Asia/Tokyo"
    assert hours.schedule["mon"] == [["09:00", "12:00"], ["13:00", "18:00"]] and hours.schedule["wed"] == []
    assert [(str(h.date), h.name) for h in hours.holidays.all()] == [("2027-01-01", "New Year"), ("2027-01-02", "")]

    bad = sup_client.post(reverse("routing:hours-edit", args=[team.pk]), {
        "time_zone": "Nowhere/Land", "mon": "9-5", "holidays": "Christmas"})
    body = bad.content.decode()
    assert bad.status_code == 200 and "is not a date" in body
