"""The supervisor pages: dashboard figures, agents (capacity, workload), teams,
bulk reassignment from the page, canned responses, the audit log and its CSV."""
import csv
import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import AuditEntry
from apps.accounts.services import audit_record
from apps.inbox.models import CannedResponse, ConversationEvent
from tests.factories import ConversationFactory, MessageFactory, QueueFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def _ago(**kw):
    return timezone.now() - dt.timedelta(**kw)


def test_dashboard_shows_waiting_oldest_wait_sla_and_agent_load(client, supervisor, agent, queue, twitter_account,
                                                                django_assert_max_num_queries):
    now = timezone.now()
    old = ConversationFactory(channel_account=twitter_account, queue=queue, status="new")
    ConversationFactory._meta.model.objects.filter(pk=old.pk).update(created_at=_ago(minutes=42))
    MessageFactory(conversation=old, sent_at=_ago(minutes=42))  # unanswered for 42 minutes
    ConversationFactory(channel_account=twitter_account, queue=queue, status="open",
                        sla_due_at=now + dt.timedelta(minutes=5))  # at risk
    ConversationFactory(channel_account=twitter_account, queue=queue, status="open", assignee=agent,
                        sla_due_at=now - dt.timedelta(minutes=5), sla_breached=True)  # breached, assigned
    ConversationFactory(channel_account=twitter_account, queue=queue, status="resolved")  # not counted
    reopened = ConversationFactory(channel_account=twitter_account, queue=queue, status="open",
                                   cycle_started_at=_ago(minutes=3), sla_due_at=now + dt.timedelta(hours=2))
    ConversationFactory._meta.model.objects.filter(pk=reopened.pk).update(created_at=_ago(days=3))
    ConversationFactory(channel_account=twitter_account, queue=QueueFactory(), status="new")  # other team: hidden
    client.force_login(supervisor)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("supervisor:dashboard"))
    assert page.status_code == 200
    snap = page.context
    row = next(q for q in snap["queues"] if q.queue_id == queue.pk)
    assert (row.waiting, row.unassigned, row.open, row.at_risk, row.breached) == (1, 3, 4, 1, 1)
    assert 41 * 60 <= row.oldest_wait_seconds <= 43 * 60
    assert len([q for q in snap["queues"] if q.queue_id]) == 1  # only the team they lead
    loads = {a.username: a.load for a in snap["agents"]}
    assert loads[agent.username] == 1
    html = page.content.decode()
    assert 'hx-get="%s"' % reverse("supervisor:dashboard-live") in html and 'hx-trigger="every 5s"' in html
    live = client.get(reverse("supervisor:dashboard-live")).content.decode()
    assert f'data-queue="{queue.name}"' in live and "42\xa0minutes" in live


def test_dashboard_api_matches_page(api_client, supervisor, queue, twitter_account):
    MessageFactory(conversation=ConversationFactory(channel_account=twitter_account, queue=queue, status="new"))
    ConversationFactory(channel_account=twitter_account, queue=queue, status="new")
    api_client.force_authenticate(supervisor)
    data = api_client.get("/api/v1/supervisor/dashboard/").json()
    q = next(q for q in data["queues"] if q["id"] == queue.pk)
    assert q["waiting"] == 1 and data["totals"]["waiting"] == 1
    assert q["unassigned"] == 2 and data["totals"]["unassigned"] == 2
    assert any(a["username"] == supervisor.username for a in data["agents"])


def test_agent_and_marketing_cannot_open_supervisor_pages(client, agent, marketing_user):
    for user in (agent, marketing_user):
        client.force_login(user)
        assert client.get(reverse("supervisor:dashboard")).status_code == 403
        assert client.get(reverse("supervisor:audit")).status_code == 403


def test_bulk_reassign_from_the_page_all_matching_filter(client, supervisor, agent, queue, twitter_account):
    convs = [ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=0) for _ in range(3)]
    ConversationFactory(channel_account=twitter_account, queue=queue, priority_bucket=3)
    client.force_login(supervisor)
    page = client.get(reverse("supervisor:reassign"), {"priority": "0"})
    assert page.context["count"] == 3
    resp = client.post(reverse("supervisor:reassign"), {"priority": "0", "scope": "all", "to": f"agent:{agent.pk}",
                                                       "reason": "urgent to Dana", "confirmed": "1"}, follow=True)
    assert "Moved 3 conversations; 0 were there already." in resp.content.decode()
    assert {c.assignee_id for c in type(convs[0]).objects.filter(priority_bucket=0)} == {agent.pk}


def test_capacity_and_workload_forms(client, supervisor, agent, queue, twitter_account):
    conv = ConversationFactory(channel_account=twitter_account, queue=queue, assignee=agent)
    client.force_login(supervisor)
    client.post(reverse("supervisor:agent-capacity", args=[agent.pk]),
                {"capacity": "4", "channel_capacity": "twitter=2, email=6"})
    agent.refresh_from_db()
    assert agent.capacity == 4 and agent.channel_capacity == {"twitter": 2, "email": 6}
    assert agent.capacity_for("twitter") == 2 and agent.capacity_for("reddit") == 4
    form = {"to": "", "reason": "off shift", "go_offline": "on"}
    confirm = client.post(reverse("supervisor:agent-workload", args=[agent.pk]), form).content.decode()
    assert f"Move 1 of {agent.display_name}'s open conversation to their queues, unassigned?" in confirm
    assert "will be set offline" in confirm and 'name="confirmed" value="1"' in confirm
    conv.refresh_from_db()
    agent.refresh_from_db()
    assert conv.assignee == agent and agent.presence == "online"  # nothing moves before the confirmation
    client.post(reverse("supervisor:agent-workload", args=[agent.pk]), {**form, "confirmed": "1"})
    conv.refresh_from_db()
    agent.refresh_from_db()
    assert conv.assignee is None and agent.presence == "offline"
    page = client.get(reverse("supervisor:agents")).content.decode()
    assert f'data-agent="{agent.username}"' in page


def test_supervisor_of_another_team_cannot_touch_agent(client, agent):
    other_sup = UserFactory(role="supervisor")
    TeamFactory().leads.add(other_sup)
    client.force_login(other_sup)
    assert client.post(reverse("supervisor:agent-capacity", args=[agent.pk]), {"capacity": "1"}).status_code == 404


def test_team_members_edited_by_lead_but_leads_only_by_admin(client, supervisor, team, admin_user):
    newbie = UserFactory(role="agent")
    client.force_login(supervisor)
    client.post(reverse("supervisor:team", args=[team.pk]),
                {"members": [supervisor.pk, newbie.pk], "leads": [newbie.pk]})
    assert set(team.members.all()) == {supervisor, newbie}
    assert set(team.leads.all()) == {supervisor}  # supervisor cannot change leads
    entry = AuditEntry.objects.get(action="team.members_changed")
    assert entry.data["added"] == [newbie.username]
    other = TeamFactory()
    assert client.get(reverse("supervisor:team", args=[other.pk])).status_code == 403
    assert client.post(reverse("supervisor:teams"), {"name": "New"}).status_code == 403
    client.force_login(admin_user)
    resp = client.post(reverse("supervisor:teams"), {"name": "Billing", "time_zone": "Europe/Paris"})
    assert resp.status_code == 302
    resp = client.post(reverse("supervisor:teams"), {"name": "Other", "time_zone": "Mars/Olympus"}, follow=True)
    assert "Unknown time zone" in resp.content.decode()


def test_canned_responses_global_by_admin_team_by_lead(client, supervisor, team, admin_user, agent):
    client.force_login(supervisor)
    client.post(reverse("supervisor:canned"), {"shortcut": "late", "title": "Late order", "team": team.pk,
                                               "text": "Sorry {{ customer.name }}, we're on it."})
    assert CannedResponse.objects.get(shortcut="late").team == team
    resp = client.post(reverse("supervisor:canned"), {"shortcut": "hi", "title": "Hi", "text": "Hello", "team": ""})
    assert resp.status_code == 403  # global ones are admins'
    client.force_login(admin_user)
    client.post(reverse("supervisor:canned"), {"shortcut": "hi", "title": "Hi", "text": "Hello", "team": ""})
    glob = CannedResponse.objects.get(shortcut="hi")
    assert glob.team is None
    client.force_login(supervisor)
    assert client.post(reverse("supervisor:canned-delete", args=[glob.pk])).status_code == 403
    page = client.get(reverse("supervisor:canned")).content.decode()
    assert "/late" in page and "/hi" in page and "Global" in page
    assert AuditEntry.objects.filter(action="canned.created").count() == 2


def test_audit_log_page_filters_and_csv(client, supervisor, agent, queue, twitter_account):
    from apps.inbox.services import conversation_assign, conversation_status_set

    conv = ConversationFactory(channel_account=twitter_account, queue=queue)
    conversation_assign(conversation=conv, assignee=agent, actor=supervisor, reason="=HYPERLINK(\"x\")")
    conversation_status_set(conversation=conv, status="open", actor=agent)
    audit_record(actor=supervisor, action="rule.updated", target="rule 1", data={"reason": "typo"})
    hidden = ConversationFactory(channel_account=twitter_account, queue=QueueFactory())
    conversation_assign(conversation=hidden, assignee=agent, actor=None)
    client.force_login(supervisor)
    rows = client.get(reverse("supervisor:audit")).context["rows"]
    actions = [r.action for r in rows]
    assert "assigned" in actions and "status_changed" in actions and "rule.updated" in actions
    assert "auth.login" in actions  # force_login is a login
    assert all(r.conversation_id != hidden.pk for r in rows)  # not their team's
    only = client.get(reverse("supervisor:audit"), {"action": "assigned"}).context["rows"]
    assert [r.action for r in only] == ["assigned"] and only[0].reason.startswith("=HYPERLINK")
    by_actor = client.get(reverse("supervisor:audit"), {"actor": agent.username}).context["rows"]
    assert {r.action for r in by_actor} == {"status_changed"}
    resp = client.get(reverse("supervisor:audit"), {"source": "conversation", "format": "csv"})
    assert resp["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(b"".join(resp.streaming_content).decode())))
    assert {r["action"] for r in table} == {"assigned", "status_changed"}
    assigned = next(r for r in table if r["action"] == "assigned")
    assert assigned["actor"] == supervisor.username and assigned["reason"].startswith("'=")  # formula defused
    assert assigned["conversation_id"] == str(conv.pk)


def test_audit_api_pages_and_csv(api_client, supervisor, agent, queue, twitter_account):
    for i in range(3):
        audit_record(actor=supervisor, action="sla.updated", target=f"policy {i}")
    api_client.force_authenticate(supervisor)
    data = api_client.get("/api/v1/audit/", {"action": "sla"}).json()
    assert [r["target"] for r in data["results"]] == ["policy 2", "policy 1", "policy 0"]
    resp = api_client.get("/api/v1/audit/", {"action": "sla", "format": "csv"})
    text = b"".join(resp.streaming_content).decode()
    assert text.splitlines()[0].startswith("at,id,source,actor,action") and text.count("sla.updated") == 3
    api_client.force_authenticate(agent)
    assert api_client.get("/api/v1/audit/").status_code == 403


def test_unrouted_conversations_are_triaged_by_supervisors(client, supervisor, agent, queue, twitter_account):
    unrouted = [ConversationFactory(channel_account=twitter_account, queue=None) for _ in range(2)]
    ConversationFactory(channel_account=twitter_account, queue=queue)
    client.force_login(supervisor)
    dash = client.get(reverse("supervisor:dashboard")).context
    assert next(q for q in dash["queues"] if q.queue_id is None).unassigned == 2
    page = client.get(reverse("supervisor:reassign"), {"queue": "none"})
    assert page.context["count"] == 2
    client.post(reverse("supervisor:reassign"), {"queue": "none", "scope": "all", "to": f"queue:{queue.pk}",
                                                 "reason": "triage", "confirmed": "1"})
    assert all(type(c).objects.get(pk=c.pk).queue_id == queue.pk for c in unrouted)
