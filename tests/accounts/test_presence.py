"""Presence: set by the agent, kept by activity, swept to away/offline when idle;
coming online hands the agent waiting work (routing's drain, after commit)."""
import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import AuditEntry, Presence, User
from apps.accounts.services import presence_sweep, user_activity_touch, user_presence_set
from apps.inbox.models import Queue
from tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db


def _idle(user, **ago):
    User.objects.filter(pk=user.pk).update(last_seen_at=timezone.now() - dt.timedelta(**ago))
    user.refresh_from_db()


def test_agent_sets_presence_from_the_page_and_api(client, api_client, agent):
    client.force_login(agent)
    client.post(reverse("accounts:presence"), {"presence": "away"})
    agent.refresh_from_db()
    assert agent.presence == Presence.AWAY and agent.presence_manual
    api_client.force_authenticate(agent)
    resp = api_client.post("/api/v1/users/me/presence/", {"presence": "online"}, format="json")
    assert resp.status_code == 200 and resp.json()["presence"] == "online"
    assert api_client.post("/api/v1/users/me/presence/", {"presence": "busy"}, format="json").status_code == 400
    changes = AuditEntry.objects.filter(action="presence.changed", target=agent.username)
    assert [(e.data["from"], e.data["to"]) for e in changes.order_by("id")][-2:] == [("online", "away"),
                                                                                   ("away", "online")]


def test_idle_agent_swept_to_away_then_offline_and_activity_brings_them_back(agent, settings):
    settings.PRESENCE_AWAY_AFTER_SECONDS, settings.PRESENCE_OFFLINE_AFTER_SECONDS = 300, 3600
    _idle(agent, minutes=6)
    assert presence_sweep() == {"away": 1, "offline": 0}
    agent.refresh_from_db()
    assert agent.presence == Presence.AWAY and not agent.presence_manual
    user_activity_touch(user=agent)  # a page view, an API call, a websocket heartbeat
    agent.refresh_from_db()
    assert agent.presence == Presence.ONLINE
    _idle(agent, minutes=61)
    presence_sweep()
    presence_sweep()
    agent.refresh_from_db()
    assert agent.presence == Presence.OFFLINE


def test_activity_does_not_override_a_chosen_away(agent):
    user_presence_set(user=agent, presence=Presence.AWAY, manual=True)
    user_activity_touch(user=agent)
    agent.refresh_from_db()
    assert agent.presence == Presence.AWAY


def test_page_views_refresh_last_seen_at_most_once_a_minute(client, agent, django_assert_max_num_queries):
    _idle(agent, minutes=3)
    client.force_login(agent)  # login itself marks online and seen
    _idle(agent, minutes=3)
    client.get(reverse("accounts:profile"))
    agent.refresh_from_db()
    assert (timezone.now() - agent.last_seen_at).total_seconds() < 5
    seen = agent.last_seen_at
    client.get(reverse("accounts:profile"))
    agent.refresh_from_db()
    assert agent.last_seen_at == seen  # no write within the minute


def test_login_marks_online_and_logout_offline(client, agent):
    User.objects.filter(pk=agent.pk).update(presence=Presence.OFFLINE)
    client.post(reverse("login"), {"username": agent.username, "password": "pw-for-tests"})
    agent.refresh_from_db()
    assert agent.presence == Presence.ONLINE
    client.post(reverse("logout"))
    agent.refresh_from_db()
    assert agent.presence == Presence.OFFLINE
    assert AuditEntry.objects.filter(action="auth.logout", actor=agent).exists()


def test_coming_online_drains_the_backlog_to_the_agent(agent, queue, twitter_account, celery_eager,
                                                       django_capture_on_commit_callbacks):
    Queue.objects.filter(pk=queue.pk).update(assignment_mode=Queue.AssignmentMode.LEAST_LOADED)
    user_presence_set(user=agent, presence=Presence.OFFLINE, manual=True)
    waiting = ConversationFactory(channel_account=twitter_account, queue=queue, status="new")
    with django_capture_on_commit_callbacks(execute=True):
        user_presence_set(user=agent, presence=Presence.ONLINE)
    waiting.refresh_from_db()
    assert waiting.assignee == agent


def test_api_token_calls_are_not_presence_but_session_calls_are(api_client, client, agent):
    from apps.accounts.services import api_token_create

    _, key = api_token_create(user=agent, name="script")
    User.objects.filter(pk=agent.pk).update(presence=Presence.AWAY, presence_manual=False)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api_client.get("/api/v1/users/me/").status_code == 200
    agent.refresh_from_db()
    assert agent.presence == Presence.AWAY
    client.force_login(agent)
    User.objects.filter(pk=agent.pk).update(presence=Presence.AWAY, presence_manual=False)
    client.get("/api/v1/users/me/")
    agent.refresh_from_db()
    assert agent.presence == Presence.ONLINE


def test_presence_switch_in_the_top_bar_returns_to_the_page(client, agent):
    client.force_login(agent)
    page = client.get(reverse("accounts:tokens")).content.decode()
    assert 'id="nav-presence"' in page
    resp = client.post(reverse("accounts:presence"), {"presence": "away", "next": "/account/tokens/"})
    assert resp.status_code == 302 and resp["Location"] == "/account/tokens/"
    resp = client.post(reverse("accounts:presence"), {"presence": "online", "next": "https://evil.example/"})
    assert resp["Location"] == reverse("accounts:profile")  # no open redirect


def test_dashboard_polling_is_not_activity(client, supervisor):
    client.force_login(supervisor)
    User.objects.filter(pk=supervisor.pk).update(presence=Presence.AWAY, presence_manual=False)
    assert client.get(reverse("supervisor:dashboard-live")).status_code == 200
    supervisor.refresh_from_db()
    assert supervisor.presence == Presence.AWAY  # a timer, not the person
    client.get(reverse("supervisor:dashboard"))
    supervisor.refresh_from_db()
    assert supervisor.presence == Presence.ONLINE
